'use strict';
// Node agent program for Kiln's agent compatibility test.
//
// Profiles itself with the @pyroscope/nodejs SDK (wall and heap profilers)
// and burns CPU in kilnHotNodeLoop until it has run for the given number of
// seconds or is killed.
//
// Usage: node app.js SERVER_URL APPLICATION_NAME SECONDS

const Pyroscope = require('@pyroscope/nodejs');

function kilnHotNodeLoop(deadline) {
  // Burns CPU until deadline; this is the frame the test looks for.
  let acc = 0;
  while (Date.now() < deadline) {
    for (let i = 0; i < 200000; i++) {
      acc = (acc * 31 + i) % 1000003;
    }
  }
  return acc;
}

function main() {
  const args = process.argv.slice(2);
  if (args.length !== 3) {
    process.stderr.write('usage: node app.js SERVER_URL APPLICATION_NAME SECONDS\n');
    process.exit(2);
  }
  const [server, name, secondsArg] = args;
  const seconds = Number(secondsArg);
  const flushMs = Number(process.env.KILN_AGENT_UPLOAD_INTERVAL_MS || '2000');
  Pyroscope.init({
    serverAddress: server,
    appName: name,
    flushIntervalMs: flushMs,
    wall: { samplingDurationMs: flushMs },
    tags: { kiln_agent: 'node' },
  });
  Pyroscope.start();
  console.log(`node agent: profiling started, appName=${name}`);
  const end = Date.now() + seconds * 1000;
  // Burn in slices and yield to the event loop between them so that the
  // SDK's flush timers and uploads can run.
  const tick = () => {
    if (Date.now() >= end) {
      console.log('node agent: done, stopping');
      Pyroscope.stop().then(
        () => process.exit(0),
        (err) => {
          console.error('node agent: stop failed:', err);
          process.exit(1);
        },
      );
      return;
    }
    kilnHotNodeLoop(Math.min(end, Date.now() + 100));
    setTimeout(tick, 10);
  };
  tick();
}

main();
