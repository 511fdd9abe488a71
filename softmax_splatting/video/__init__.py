"""Video in and out for frame-rate conversion, one concept per module (``run_a_pair.py --video`` is built on it).

In the order a conversion uses them:

* ``sources.py``: a video file (PyAV), a folder of frames or a printf pattern, as timed, upright RGB frames;
* ``scenes.py``: the scene-cut score of a frame pair;
* ``duplicates.py``: whether a frame repeats the one before it;
* ``timeline.py``: which output frames fall between two input frames, and at which t;
* ``sinks.py``: a video file with the input's audio, written atomically, and the checks of an output;
* ``segments.py``: resumable output (a video in segments, or a folder of numbered frames) that ``--resume``
  continues after a stop.

``conversion.py`` streams a source through an interpolator into a sink. The names below are the public ones.
"""

from .duplicates import MAX_REPEATS, REPEAT_LEVEL, is_repeat, repeat_score
from .scenes import SCENE_THRESHOLD, SceneCuts, colour_distance, motion_residual, scene_score
from .segments import (SEGMENT_FRAMES, ResumableFolderSink, SegmentedVideoSink, fingerprint,
                       open_resumable_sink)
from ..files import check_writable
from .sinks import CONTAINERS, CRF_RANGES, EncodeOptions, VideoSink, check_output, wants_folder
from .sources import (DEFAULT_SEQUENCE_FPS, IMAGE_SUFFIXES, MAX_PIXELS, AudioStream, Frame, ImageSequence, Source,
                      VideoFileSource, check_size, open_source, parse_time)
from .timeline import MAX_FPS, MAX_FRAMES_PER_INTERVAL, Timeline, parse_rate

__all__ = ['Frame', 'AudioStream', 'Source', 'VideoFileSource', 'ImageSequence', 'open_source', 'check_size',
           'parse_time', 'is_repeat', 'repeat_score', 'REPEAT_LEVEL', 'MAX_REPEATS', 'SceneCuts', 'scene_score',
           'colour_distance', 'motion_residual', 'Timeline', 'parse_rate', 'VideoSink', 'SegmentedVideoSink',
           'ResumableFolderSink', 'open_resumable_sink', 'fingerprint', 'SEGMENT_FRAMES', 'EncodeOptions',
           'check_output', 'check_writable', 'wants_folder', 'SCENE_THRESHOLD', 'CONTAINERS', 'CRF_RANGES',
           'IMAGE_SUFFIXES', 'MAX_PIXELS', 'MAX_FPS', 'MAX_FRAMES_PER_INTERVAL', 'DEFAULT_SEQUENCE_FPS']
