//! The subset of Perfetto's trace protos that schedkit writes and reads back,
//! declared by hand for prost.
//!
//! Field numbers and types are those of Perfetto's `.proto` files (checked against
//! `protos/perfetto/trace/trace.proto`, `trace_packet.proto`, `clock_snapshot.proto`,
//! `common/builtin_clock.proto` and `track_event/{track_event, track_descriptor,
//! process_descriptor, thread_descriptor, counter_descriptor,
//! debug_annotation}.proto` of google/perfetto). Only the fields used here are
//! declared; prost skips the others when decoding. Members of a proto `oneof` are
//! declared as separate optional fields (the wire format is the same).
//!
//! Perfetto's protos are proto2, where repeated numbers are not packed: they are
//! declared `packed = "false"` so that Perfetto reads them (prost reads both).

/// A whole trace: a sequence of packets. A file is this message; its packets can
/// be written one at a time (each one is field 1, length-delimited).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Trace {
    #[prost(message, repeated, tag = "1")]
    pub packet: Vec<TracePacket>,
}

/// `TracePacket.sequence_flags` bits.
pub mod sequence_flags {
    /// The writer will re-emit incremental state before referring to it again.
    pub const SEQ_INCREMENTAL_STATE_CLEARED: u32 = 1;
    /// The packet refers to incremental state (interned data, defaults).
    pub const SEQ_NEEDS_INCREMENTAL_STATE: u32 = 2;
}

/// One packet of a trace.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TracePacket {
    /// Time of the packet, in the clock `timestamp_clock_id` (default BOOTTIME).
    #[prost(uint64, optional, tag = "8")]
    pub timestamp: Option<u64>,
    /// A [`BuiltinClock`] (or a sequence-scoped clock id).
    #[prost(uint32, optional, tag = "58")]
    pub timestamp_clock_id: Option<u32>,
    /// The sequence (writer) the packet belongs to.
    #[prost(uint32, optional, tag = "10")]
    pub trusted_packet_sequence_id: Option<u32>,
    /// [`sequence_flags`] bits.
    #[prost(uint32, optional, tag = "13")]
    pub sequence_flags: Option<u32>,
    /// Nonzero when packets of the sequence were lost before this one.
    #[prost(uint32, optional, tag = "42")]
    pub previous_packet_dropped: Option<u32>,
    /// The first packet its writer wrote on the sequence.
    #[prost(bool, optional, tag = "87")]
    pub first_packet_on_sequence: Option<bool>,
    #[prost(message, optional, tag = "6")]
    pub clock_snapshot: Option<ClockSnapshot>,
    #[prost(message, optional, tag = "11")]
    pub track_event: Option<TrackEvent>,
    #[prost(message, optional, tag = "60")]
    pub track_descriptor: Option<TrackDescriptor>,
}

/// Perfetto's built-in clocks (`BuiltinClock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BuiltinClock {
    Unknown = 0,
    Realtime = 1,
    RealtimeCoarse = 2,
    Monotonic = 3,
    MonotonicCoarse = 4,
    MonotonicRaw = 5,
    Boottime = 6,
}

/// The readings of several clocks at one moment, and which clock is the trace's.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClockSnapshot {
    #[prost(message, repeated, tag = "1")]
    pub clocks: Vec<clock_snapshot::Clock>,
    /// The clock the trace's times are shown in.
    #[prost(enumeration = "BuiltinClock", optional, tag = "2")]
    pub primary_trace_clock: Option<i32>,
}

/// Nested messages of [`ClockSnapshot`].
pub mod clock_snapshot {
    /// One clock's reading.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Clock {
        #[prost(uint32, optional, tag = "1")]
        pub clock_id: Option<u32>,
        #[prost(uint64, optional, tag = "2")]
        pub timestamp: Option<u64>,
    }
}

/// Declares a track: its name, its parent, and what it stands for (a process, a
/// thread, a counter).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrackDescriptor {
    #[prost(uint64, optional, tag = "1")]
    pub uuid: Option<u64>,
    #[prost(uint64, optional, tag = "5")]
    pub parent_uuid: Option<u64>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "3")]
    pub process: Option<ProcessDescriptor>,
    #[prost(message, optional, tag = "4")]
    pub thread: Option<ThreadDescriptor>,
    #[prost(message, optional, tag = "8")]
    pub counter: Option<CounterDescriptor>,
    /// How the children of this track are ordered.
    #[prost(
        enumeration = "track_descriptor::ChildTracksOrdering",
        optional,
        tag = "11"
    )]
    pub child_ordering: Option<i32>,
    /// Rank among siblings when the parent's ordering is `Explicit`.
    #[prost(int32, optional, tag = "12")]
    pub sibling_order_rank: Option<i32>,
}

/// Nested types of [`TrackDescriptor`].
pub mod track_descriptor {
    /// `TrackDescriptor.ChildTracksOrdering`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum ChildTracksOrdering {
        Unknown = 0,
        Lexicographic = 1,
        Chronological = 2,
        Explicit = 3,
    }
}

/// A process.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProcessDescriptor {
    #[prost(int32, optional, tag = "1")]
    pub pid: Option<i32>,
    #[prost(string, optional, tag = "6")]
    pub process_name: Option<String>,
}

/// A thread.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ThreadDescriptor {
    #[prost(int32, optional, tag = "1")]
    pub pid: Option<i32>,
    #[prost(int64, optional, tag = "2")]
    pub tid: Option<i64>,
    #[prost(string, optional, tag = "5")]
    pub thread_name: Option<String>,
}

/// Makes a track a counter track.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CounterDescriptor {
    #[prost(enumeration = "counter_descriptor::Unit", optional, tag = "3")]
    pub unit: Option<i32>,
    #[prost(string, optional, tag = "6")]
    pub unit_name: Option<String>,
    #[prost(bool, optional, tag = "5")]
    pub is_incremental: Option<bool>,
}

/// Nested types of [`CounterDescriptor`].
pub mod counter_descriptor {
    /// `CounterDescriptor.Unit`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Unit {
        Unspecified = 0,
        TimeNs = 1,
        Count = 2,
        SizeBytes = 3,
    }
}

/// A slice begin or end, an instant or a counter value on a track.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrackEvent {
    #[prost(enumeration = "track_event::Type", optional, tag = "9")]
    pub r#type: Option<i32>,
    #[prost(uint64, optional, tag = "11")]
    pub track_uuid: Option<u64>,
    #[prost(string, optional, tag = "23")]
    pub name: Option<String>,
    /// An interned name (not written here).
    #[prost(uint64, optional, tag = "10")]
    pub name_iid: Option<u64>,
    #[prost(string, repeated, tag = "22")]
    pub categories: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub debug_annotations: Vec<DebugAnnotation>,
    #[prost(int64, optional, tag = "30")]
    pub counter_value: Option<i64>,
    #[prost(double, optional, tag = "44")]
    pub double_counter_value: Option<f64>,
    /// Flows this event starts (or continues).
    #[prost(fixed64, repeated, packed = "false", tag = "47")]
    pub flow_ids: Vec<u64>,
    /// Flows this event ends.
    #[prost(fixed64, repeated, packed = "false", tag = "48")]
    pub terminating_flow_ids: Vec<u64>,
}

/// Nested types of [`TrackEvent`].
pub mod track_event {
    /// `TrackEvent.Type`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        Unspecified = 0,
        SliceBegin = 1,
        SliceEnd = 2,
        Instant = 3,
        Counter = 4,
    }
}

/// A named value attached to an event (shown in the UI's details panel).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DebugAnnotation {
    #[prost(string, optional, tag = "10")]
    pub name: Option<String>,
    #[prost(uint64, optional, tag = "1")]
    pub name_iid: Option<u64>,
    #[prost(bool, optional, tag = "2")]
    pub bool_value: Option<bool>,
    #[prost(uint64, optional, tag = "3")]
    pub uint_value: Option<u64>,
    #[prost(int64, optional, tag = "4")]
    pub int_value: Option<i64>,
    #[prost(double, optional, tag = "5")]
    pub double_value: Option<f64>,
    #[prost(string, optional, tag = "6")]
    pub string_value: Option<String>,
    #[prost(message, repeated, tag = "11")]
    pub dict_entries: Vec<DebugAnnotation>,
    #[prost(message, repeated, tag = "12")]
    pub array_values: Vec<DebugAnnotation>,
}

impl DebugAnnotation {
    /// An unsigned value.
    pub fn uint(name: &str, v: u64) -> DebugAnnotation {
        DebugAnnotation {
            name: Some(name.to_string()),
            uint_value: Some(v),
            ..Default::default()
        }
    }

    /// A string value.
    pub fn string(name: &str, v: &str) -> DebugAnnotation {
        DebugAnnotation {
            name: Some(name.to_string()),
            string_value: Some(v.to_string()),
            ..Default::default()
        }
    }

    /// A boolean value.
    pub fn bool(name: &str, v: bool) -> DebugAnnotation {
        DebugAnnotation {
            name: Some(name.to_string()),
            bool_value: Some(v),
            ..Default::default()
        }
    }

    /// A floating-point value.
    pub fn double(name: &str, v: f64) -> DebugAnnotation {
        DebugAnnotation {
            name: Some(name.to_string()),
            double_value: Some(v),
            ..Default::default()
        }
    }
}

impl TrackEvent {
    /// The annotation called `name`.
    pub fn annotation(&self, name: &str) -> Option<&DebugAnnotation> {
        self.debug_annotations
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    }
}
