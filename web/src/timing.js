// When a change is on screen, for the render figures. A task queued from an
// animation frame callback runs once that frame has been laid out and
// painted: it marks the paint without waiting for the frame after.

// done(time) once the frame whose animation frame callback this is, is painted.
export function whenThisFramePainted(done) {
  const ch = new MessageChannel();
  ch.port1.onmessage = () => done(performance.now());
  ch.port2.postMessage(null);
}

// done(time) once the next frame is painted.
export function afterPaint(done) {
  requestAnimationFrame(() => whenThisFramePainted(done));
}
