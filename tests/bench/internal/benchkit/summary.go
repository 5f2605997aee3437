package benchkit

import (
	"fmt"
	"os"
)

// Summary prints one machine-readable figure, `SUMMARY name value unit`,
// for the table `make bench` ends with (tests/bench/summary.sh), and appends
// it to the file KILN_BENCH_SUMMARY names, if any.
func Summary(name string, value float64, unit string) {
	line := fmt.Sprintf("SUMMARY %s %.4g %s\n", name, value, unit)
	fmt.Print(line)
	path := os.Getenv("KILN_BENCH_SUMMARY")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench summary:", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		fmt.Fprintln(os.Stderr, "bench summary:", err)
	}
}
