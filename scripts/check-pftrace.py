#!/usr/bin/env python3
"""Checks a .pftrace against Perfetto's own schema and the rules its trace processor
applies when the UI loads a file, without the UI (which needs a network).

Decodes every packet with the protobuf classes that Perfetto publishes (the `perfetto`
package on PyPI), so a field number or type that schedkit's hand-written subset gets
wrong shows up as an unknown or misread field here, where schedkit's own decoder would
read its own mistake back. Then checks what the trace processor relies on: every track
event on a sequence, that sequence's incremental state cleared first, every event on a
declared track, parents declared, slices that end after they begin and only on slice
tracks, counters only on counter tracks, every flow that ends started earlier, and
clocks that are known.

Usage: check-pftrace.py FILE [--expect-threads NAME,...] [--expect-cpus N]
                             [--expect-decisions | --expect-no-decisions]
Prints a summary; exits 1 with one line per problem (at most 20) if the file fails.
"""

import argparse
import mmap
import os
import sys
from collections import Counter, defaultdict

try:
    from google.protobuf import unknown_fields
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
except ImportError as e:  # the test script installs them into a virtualenv
    sys.exit(f"check-pftrace: Perfetto's protobuf classes are not installed ({e})")

TE = pb.TrackEvent
SEQ_CLEARED = pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
SEQ_NEEDS = pb.TracePacket.SEQ_NEEDS_INCREMENTAL_STATE
BUILTIN_CLOCKS = set(pb.BuiltinClock.values())


def packets(path):
    """The packets of a Trace message, one at a time (the file may be large)."""
    with open(path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire != 2:
            raise ValueError(f"byte {pos}: field {field} has wire type {wire}, not a packet")
        size, pos = varint(data, pos)
        if pos + size > end:
            raise ValueError(f"byte {pos}: a packet of {size} bytes runs past the end")
        if field == 1:
            yield pb.TracePacket.FromString(data[pos : pos + size])
        pos += size


def varint(data, pos):
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("the file ends inside a varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def unknown(msg, path="packet"):
    """Paths of the fields Perfetto's schema does not know, in msg and below."""
    found = [f"{path}.#{u.field_number}" for u in unknown_fields.UnknownFieldSet(msg)]
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        items = value if fd.is_repeated else [value]
        for item in items:
            found += unknown(item, f"{path}.{fd.name}")
    return found


def check(path):
    problems = []
    tracks = {}  # uuid -> descriptor
    kinds = Counter()
    events = Counter()
    cleared = set()
    clocks = set(BUILTIN_CLOCKS)
    open_slices = defaultdict(list)  # uuid -> begin timestamps
    flows_started, flows_ended, flows_unknown = set(), 0, 0
    annotations = Counter()
    n = 0

    def problem(msg):
        problems.append(msg)

    def event(n, ts, e):
        nonlocal flows_ended, flows_unknown
        if not e.HasField("track_uuid"):
            problem(f"packet {n}: a track event without a track")
            return
        d = tracks.get(e.track_uuid)
        if d is None:
            problem(f"packet {n}: an event on track {e.track_uuid}, never declared")
            return
        t = e.type
        events[TE.Type.Name(t)] += 1
        label = d.name or d.thread.thread_name or d.process.process_name or str(d.uuid)
        is_counter = d.HasField("counter")
        if t == TE.TYPE_COUNTER:
            if not is_counter:
                problem(f"packet {n}: a counter value on {label!r}, not a counter track")
            if e.WhichOneof("counter_value_field") is None:
                problem(f"packet {n}: a counter event without a value")
        elif is_counter:
            problem(f"packet {n}: a {TE.Type.Name(t)} on counter track {label!r}")
        if t == TE.TYPE_SLICE_BEGIN:
            open_slices[e.track_uuid].append(ts)
        elif t == TE.TYPE_SLICE_END:
            if not open_slices[e.track_uuid]:
                problem(f"packet {n}: a slice ends on {label!r} where none began")
            elif open_slices[e.track_uuid].pop() > ts:
                problem(f"packet {n}: a slice on {label!r} ends before it begins")
        if t in (TE.TYPE_SLICE_BEGIN, TE.TYPE_INSTANT) and e.WhichOneof("name_field") is None:
            problem(f"packet {n}: a {TE.Type.Name(t)} without a name")
        for f in e.flow_ids:
            flows_started.add(f)
        for f in e.terminating_flow_ids:
            if f in flows_started:
                flows_ended += 1
            else:
                flows_unknown += 1
        for a in e.debug_annotations:
            annotations[a.name] += 1

    for n, p in enumerate(packets(path), 1):
        for u in unknown(p)[:3]:
            problem(f"packet {n}: {u} is not in Perfetto's schema")
        seq = p.trusted_packet_sequence_id if p.HasField("trusted_packet_sequence_id") else None
        if p.sequence_flags & SEQ_CLEARED and seq is not None:
            cleared.add(seq)
        if p.sequence_flags & SEQ_NEEDS and seq not in cleared:
            problem(f"packet {n}: needs incremental state its sequence never cleared")
        if p.HasField("clock_snapshot"):
            for c in p.clock_snapshot.clocks:
                clocks.add(c.clock_id)
        if p.HasField("timestamp_clock_id") and p.timestamp_clock_id not in clocks:
            problem(f"packet {n}: timestamp on clock {p.timestamp_clock_id}, never declared")
        if p.HasField("track_descriptor"):
            d = p.track_descriptor
            if not d.HasField("uuid"):
                problem(f"packet {n}: a track descriptor without a uuid")
            old = tracks.get(d.uuid)
            # Re-declaring a track (a thread renamed) is allowed; changing its kind is not.
            if old is not None and (old.HasField("counter"), old.HasField("thread")) != (
                d.HasField("counter"),
                d.HasField("thread"),
            ):
                problem(f"packet {n}: track {d.uuid} re-declared as another kind")
            tracks[d.uuid] = d
            if d.HasField("thread") and (not d.thread.HasField("tid") or not d.thread.HasField("pid")):
                problem(f"packet {n}: thread track {d.uuid} without pid and tid")
            if d.HasField("process") and not d.process.HasField("pid"):
                problem(f"packet {n}: process track {d.uuid} without a pid")
        if p.HasField("track_event"):
            if seq is None:
                problem(f"packet {n}: a track event outside any sequence (the UI drops it)")
            elif seq not in cleared:
                problem(f"packet {n}: a track event before its sequence's state was cleared")
            if not p.HasField("timestamp"):
                problem(f"packet {n}: a track event without a timestamp")
            event(n, p.timestamp, p.track_event)

    for uuid, d in tracks.items():
        if d.HasField("parent_uuid") and d.parent_uuid not in tracks:
            problem(f"track {uuid} ({d.name}): parent {d.parent_uuid} is never declared")
        kinds["counter" if d.HasField("counter") else "thread" if d.HasField("thread")
              else "process" if d.HasField("process") else "other"] += 1

    if n == 0:
        problem("the file holds no packet")
    elif not events:
        problem("the file holds no track event")
    if flows_unknown:
        problem(f"{flows_unknown} flows end that never started")
    still_open = sum(len(v) for v in open_slices.values())
    return n, tracks, kinds, events, flows_started, flows_ended, still_open, annotations, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--expect-threads", default="", help="comma-separated thread names")
    ap.add_argument("--expect-cpus", type=int, default=0)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--expect-decisions", action="store_true")
    g.add_argument("--expect-no-decisions", action="store_true")
    args = ap.parse_args()
    try:
        (n, tracks, kinds, events, flows, ended, still_open, ann, problems) = check(args.file)
    except (OSError, ValueError) as e:
        sys.exit(f"check-pftrace: {args.file}: {e}")
    except Exception as e:  # protobuf's DecodeError and friends
        sys.exit(f"check-pftrace: {args.file}: not a Perfetto trace: {e}")

    names = {d.name for d in tracks.values()} | {
        d.thread.thread_name for d in tracks.values() if d.HasField("thread")
    }
    for want in filter(None, args.expect_threads.split(",")):
        if not any(want in name for name in names):
            problems.append(f"no thread named {want!r}")
    cpus = {d.name for d in tracks.values() if d.name.startswith("CPU ")}
    if len(cpus) < args.expect_cpus:
        problems.append(f"{len(cpus)} CPU tracks, expected {args.expect_cpus}")
    decisions = "schedkit decisions" in names and ann["by"] > 0
    if args.expect_decisions and not decisions:
        problems.append("no schedkit decision on the timeline")
    if args.expect_no_decisions and decisions:
        problems.append("schedkit decisions on a timeline that should have none")

    print(f"{args.file}: {n} packets, {len(tracks)} tracks "
          f"({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}), "
          f"{len(cpus)} CPUs")
    print("  events: " + ", ".join(f"{k.removeprefix('TYPE_').lower()} {v}"
                                    for k, v in sorted(events.items())))
    print(f"  flows: {len(flows)} started, {ended} ended; slices left open: {still_open}")
    if problems:
        for p in problems[:20]:
            print(f"  PROBLEM: {p}", file=sys.stderr)
        if len(problems) > 20:
            print(f"  ... and {len(problems) - 20} more", file=sys.stderr)
        sys.exit(1)
    print("  valid under Perfetto's schema and track-event rules")


if __name__ == "__main__":
    main()
