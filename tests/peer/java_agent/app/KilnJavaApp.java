// SPDX-License-Identifier: Apache-2.0
// The program the java_agent peer test attaches the Pyroscope Java agent
// to: one thread burns CPU in cpuHot (labels set with LabelsWrapper), one
// allocates in allocHeavy (labels set with a ScopedContext), and four
// contend for one monitor in lockContended. It runs for the seconds given
// as its argument, then exits (the agent uploads what is left).
import io.pyroscope.labels.v2.LabelsSet;
import io.pyroscope.labels.v2.Pyroscope;
import io.pyroscope.labels.v2.ScopedContext;

public final class KilnJavaApp {
    static volatile long sink;
    static final Object MONITOR = new Object();

    static long cpuHot(long seed) {
        long x = seed;
        for (int i = 0; i < 20_000_000; i++) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            x ^= x >>> 17;
        }
        return x;
    }

    static long allocHeavy() {
        long n = 0;
        for (int i = 0; i < 2_000; i++) {
            byte[] b = new byte[16_384 + (i % 64) * 1024];
            b[i % b.length] = 1;
            n += b.length;
        }
        return n;
    }

    static void lockContended() {
        synchronized (MONITOR) {
            sink += cpuHot(sink) & 1;
            try {
                Thread.sleep(2);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    static Thread loop(String name, long until, Runnable r) {
        Thread t = new Thread(() -> {
            while (System.currentTimeMillis() < until)
                r.run();
        }, name);
        t.start();
        return t;
    }

    public static void main(String[] args) throws Exception {
        long until = System.currentTimeMillis() + 1000L * Integer.parseInt(args[0]);
        Thread[] ts = new Thread[6];
        ts[0] = loop("cpu", until, () -> Pyroscope.LabelsWrapper.run(
                new LabelsSet("worker", "cpu"), () -> { sink += cpuHot(sink); }));
        ts[1] = loop("alloc", until, () -> {
            try (ScopedContext s = new ScopedContext(new LabelsSet("worker", "alloc"))) {
                sink += allocHeavy();
            }
        });
        for (int i = 2; i < ts.length; i++)
            ts[i] = loop("lock-" + i, until, () -> Pyroscope.LabelsWrapper.run(
                    new LabelsSet("worker", "lock"), KilnJavaApp::lockContended));
        for (Thread t : ts)
            t.join();
        System.out.println("done " + (sink & 1));
    }
}
