"""frames.py, the one image reader: a JPEG or PNG that ends early is an error naming the file, wherever it is read
(pair mode, image sequences, training triplets, make_triplets.py, photo textures), never an image with grey fill."""

import io

import cv2
import numpy as np
import pytest
from images import texture
from PIL import Image

from softmax_splatting import frames
from softmax_splatting.errors import UsageError


def encoded(suffix: str, seed: int = 0, **pillow) -> bytes:
    """A 64 x 80 texture as the bytes of a .jpg or .png file (Pillow's encoder: progressive JPEGs too)."""
    buffer = io.BytesIO()
    Image.fromarray(texture(64, 80, seed)).save(buffer, format='JPEG' if suffix == '.jpg' else 'PNG', **pillow)
    return buffer.getvalue()


def cuts(data: bytes):
    """Places to cut a file: early, inside the image data, and each of its last 12 bytes."""
    return [len(data) // 3, len(data) // 2] + list(range(len(data) - 12, len(data)))


@pytest.mark.parametrize('suffix, pillow', [('.jpg', {}), ('.jpg', {'progressive': True}), ('.png', {})],
                         ids=['jpeg', 'progressive-jpeg', 'png'])
def test_a_truncated_image_is_an_error_naming_the_file(tmp_path, suffix, pillow, capfd):
    data = encoded(suffix, **pillow)
    whole = tmp_path / f'whole{suffix}'
    whole.write_bytes(data)
    assert frames.read_image(whole).shape == (64, 80, 3)
    for cut in cuts(data):
        path = tmp_path / f'cut{cut}{suffix}'
        path.write_bytes(data[:cut])
        with pytest.raises(UsageError) as raised:
            frames.read_image(path)
        assert str(raised.value).startswith(f'{path}: truncated '), (cut, str(raised.value))
    # checked before decoding: neither libjpeg's nor libpng's own complaint reaches the terminal
    assert capfd.readouterr().err == ''


def test_complete_jpegs_with_a_thumbnail_or_appended_data_are_read(tmp_path):
    """The end-of-image test looks after the last scan: a thumbnail's own markers before the image, or bytes after
    its end, change nothing; the image cut short with a thumbnail inside is still found out."""
    main, thumbnail = encoded('.jpg', 1), encoded('.jpg', 2)
    # an application segment (APP15, which decoders skip) holding a complete JPEG, as EXIF holds a thumbnail
    segment = b'\xff\xef' + (len(thumbnail) + 2).to_bytes(2, 'big') + thumbnail
    with_thumbnail = main[:2] + segment + main[2:]
    expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(main, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    for name, data in (('thumbnail', with_thumbnail), ('appended', main + b'trailing data\x00' * 4)):
        (tmp_path / f'{name}.jpg').write_bytes(data)
        assert np.array_equal(frames.read_image(tmp_path / f'{name}.jpg'), expected), name
    (tmp_path / 'cut.jpg').write_bytes(with_thumbnail[:-40])
    with pytest.raises(UsageError, match='truncated JPEG'):
        frames.read_image(tmp_path / 'cut.jpg')


def test_reading_matches_opencv_and_refuses_what_is_not_an_image(tmp_path):
    path = tmp_path / 'a.png'
    frames.write_image(path, texture(40, 48))
    assert np.array_equal(frames.read_image(path), texture(40, 48))
    for name, data in (('empty.png', b''), ('text.jpg', b'hello'), ('header.png', b'\x89PNG\r\n\x1a\n')):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UsageError, match=f'{name}: (not a readable image|truncated PNG)'):
            frames.read_image(tmp_path / name)
    with pytest.raises(UsageError, match='no such image file'):
        frames.read_image(tmp_path / 'absent.png')


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_every_tool_refuses_a_truncated_frame_in_one_line(tmp_path, capsys):
    from test_train_and_test import make_dataset

    from softmax_splatting.cli import interpolate, train, triplets
    from softmax_splatting.synthetic_flow import _load_photo

    # pair mode
    one, two = tmp_path / 'one.jpg', tmp_path / 'two.jpg'
    frames.write_image(one, texture(64, 80, 1))
    frames.write_image(two, texture(64, 80, 2))
    truncate(two)
    assert interpolate.main(['--one', str(one), '--two', str(two), '--out', str(tmp_path / 'mid.png'),
                             '--model', 'classical']) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f'error: {two}: truncated JPEG file (it ends before ' \
                                                                f'its end-of-image marker)'
    assert not (tmp_path / 'mid.png').exists()
    # training triplets
    root = make_dataset(tmp_path / 'data', train=2, test=1, suffix='.jpg')
    broken = root / 'sequences' / '00001' / '0002' / 'im3.jpg'
    truncate(broken)
    assert train.main(['--data', str(root), '--out', str(tmp_path / 'run'), '--batch-size', '2', '--crop', '64x64',
                       '--workers', '0', '--val-every', '0', '--steps', '1', '--device', 'cpu']) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f'error: {broken}: truncated JPEG file (it ends ' \
                                                                f'before its end-of-image marker)'
    # make_triplets.py, from a folder of frames
    folder = tmp_path / 'clip'
    for index in range(3):
        frames.write_image(folder / f'{index:03d}.png', texture(64, 80, index))
    truncate(folder / '001.png')
    assert triplets.main([str(folder), '--out', str(tmp_path / 'triplets'), '--size', '32x32', '--min-motion', '0',
                          '--no-progress']) == 2
    err = capsys.readouterr().err
    assert f'error: {folder / "001.png"}: truncated PNG file' in err and 'Traceback' not in err
    # photo textures of the synthetic flow data
    with pytest.raises(UsageError, match='truncated PNG'):
        _load_photo(str(folder / '001.png'))
