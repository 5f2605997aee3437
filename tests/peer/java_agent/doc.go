// Package javaagent is the peer test of JFR ingest with the real Pyroscope
// Java agent (io.pyroscope:agent from Maven Central) attached to a small
// Java program (app/KilnJavaApp.java, compiled by the test with javac)
// that burns CPU, allocates and contends for a lock under dynamic labels.
// The test finds each method in its profile type and series through the
// querier's Connect API, in the agent's JFR mode and in its OTLP mode.
package javaagent
