() => {
  // The page's two players (#source: the input, #result: the conversion) play as one: play, pause, seek and speed
  // follow whichever the user touches. Their durations differ only by slow motion, so each time is scaled by the
  // ratio of the durations. Echoes of our own changes end themselves: an event that finds the other player
  // already in the matching state does nothing, and a seek we made is not followed back (its 'seeked' could
  // arrive after a newer seek of the user's and undo it).
  const player = (id) => document.querySelector(`#${id} video`);
  const ours = new WeakSet();  // players seeking because we told them to
  const pair = (target) => {
    const source = player('source'), result = player('result');
    if (!source || !result || (target !== source && target !== result)) return null;
    const other = target === source ? result : source;
    const scale = other.duration / target.duration;
    return Number.isFinite(scale) && scale > 0 ? { other, scale } : null;
  };
  const align = (target, other, scale, slack) => {
    const wanted = target.currentTime * scale;
    if (Math.abs(other.currentTime - wanted) > slack) {
      ours.add(other);
      other.currentTime = Math.min(wanted, other.duration);
    }
  };
  const follow = (event) => {
    if (event.type === 'seeked' && ours.delete(event.target)) return;  // a seek of ours ended (seeks in a row: one)
    const found = pair(event.target);
    if (!found) return;
    const { other, scale } = found;
    const target = event.target;
    player('source').muted = true;  // one sound: the result's (the command line keeps the input's audio)
    if (event.type === 'play' && other.paused) {
      align(target, other, scale, 0.05);
      other.playbackRate = target.playbackRate * scale;
      other.play().catch(() => {});
    } else if (event.type === 'pause' && !other.paused) {
      other.pause();
      align(target, other, scale, 0.05);
    } else if (event.type === 'seeked') {
      align(target, other, scale, 0.05);
    } else if (event.type === 'ratechange') {
      const wanted = target.playbackRate * scale;
      if (Math.abs(other.playbackRate - wanted) > 1e-3) other.playbackRate = wanted;
    } else if (event.type === 'timeupdate' && target === player('result') && !target.paused) {
      align(target, other, scale, 0.2);  // drift while both play
    }
  };
  for (const type of ['play', 'pause', 'seeked', 'ratechange', 'timeupdate']) {
    document.addEventListener(type, follow, true);  // media events do not bubble; capture sees them
  }
}
