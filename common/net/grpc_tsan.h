/* SPDX-License-Identifier: Apache-2.0
 * grpc_tsan: declares to ThreadSanitizer the hand-offs that go through a
 * gRPC completion queue. A tag's state is written by the thread that starts
 * an operation and read by the thread that takes its event; gRPC orders the
 * two, but it is not instrumented, so TSan would report every such read as
 * a race. Under TSan the starter releases the tag's object and the taker
 * acquires it; elsewhere both are nothing. */
#ifndef KILN_GRPC_TSAN_H
#define KILN_GRPC_TSAN_H

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define KILN_GRPC_HANDOFF_RELEASE(obj) __tsan_release(obj)
#define KILN_GRPC_HANDOFF_ACQUIRE(obj) __tsan_acquire(obj)
#else
#define KILN_GRPC_HANDOFF_RELEASE(obj) ((void)(obj))
#define KILN_GRPC_HANDOFF_ACQUIRE(obj) ((void)(obj))
#endif

#endif
