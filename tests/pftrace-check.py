#!/usr/bin/env python3
"""scripts/check-pftrace.py must pass a trace schedkit wrote and fail each kind of
broken trace: run with the virtualenv's python, as `tests/pftrace-check.py GOOD.pftrace`.
The broken ones are the good one with one packet added, as a writer bug would add it."""

import importlib.util
import os
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "check_pftrace", os.path.join(here, "..", "scripts", "check-pftrace.py"))
checker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checker)
pb = checker.pb


def frame(packet_bytes):
    """A packet as the Trace message's field 1."""
    out, n = bytearray([0x0A]), len(packet_bytes)
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + packet_bytes


def sequence_and_thread_track(good):
    """The good trace's sequence and its first thread track."""
    seq = uuid = None
    for p in checker.packets(good):
        seq = seq or p.trusted_packet_sequence_id
        if uuid is None and p.HasField("track_descriptor") and p.track_descriptor.HasField("thread"):
            uuid = p.track_descriptor.uuid
        if seq and uuid is not None:
            break
    return seq, uuid


def event_packet(where, **fields):
    """A track event on `where` (sequence, track), or on the track given."""
    seq, uuid = where
    p = pb.TracePacket(timestamp=10**12, trusted_packet_sequence_id=seq)
    p.track_event.track_uuid = fields.pop("track_uuid", uuid)
    p.track_event.name = "broken"
    for k, v in fields.items():
        if isinstance(v, list):
            getattr(p.track_event, k).extend(v)
        else:
            setattr(p.track_event, k, v)
    return p


def failures(good, extra):
    with tempfile.NamedTemporaryFile(suffix=".pftrace", delete=False) as f:
        f.write(open(good, "rb").read() + extra)
    try:
        return checker.check(f.name)[-1]
    finally:
        os.unlink(f.name)


def main():
    good = sys.argv[1]
    ok = checker.check(good)[-1]
    assert ok == [], f"the good trace fails: {ok}"
    te = pb.TrackEvent
    where = sequence_and_thread_track(good)
    cases = {
        "never declared": event_packet(where, track_uuid=987654321, type=te.TYPE_INSTANT)
        .SerializeToString(),
        "where none began": event_packet(where, type=te.TYPE_SLICE_END).SerializeToString(),
        "not a counter track": event_packet(where, type=te.TYPE_COUNTER, counter_value=1)
        .SerializeToString(),
        "never started": event_packet(where, type=te.TYPE_INSTANT, terminating_flow_ids=[1 << 60])
        .SerializeToString(),
        # A field number Perfetto does not have (as a writer with a wrong tag would write).
        "not in Perfetto's schema": event_packet(where, type=te.TYPE_INSTANT).SerializeToString()
        + bytes([0xF8, 0xFF, 0x3F, 0x01]),  # field 1048575, varint 1
        "outside any sequence": pb.TracePacket(
            timestamp=1, track_event=pb.TrackEvent(type=te.TYPE_INSTANT, name="x")
        ).SerializeToString(),
    }
    for want, packet in cases.items():
        got = failures(good, frame(packet))
        assert any(want in g for g in got), f"a trace with {want!r}: the checker said {got}"
        print(f"  fails as it should: {want} ({got[0]})")
    print("check-pftrace: passes the good trace, fails each broken one")


if __name__ == "__main__":
    main()
