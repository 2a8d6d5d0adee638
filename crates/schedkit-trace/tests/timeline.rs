//! The SVG lanes: structure, clipping, aggregation of sub-pixel slices, errors.

use schedkit_trace::timeline::{base_name, write_svg, LANE_WIDTH};
use schedkit_trace::{CpuSlice, Pid};

const MS: u64 = 1_000_000;

fn slice(cpu: u32, start_ns: u64, end_ns: u64, pid: Pid, name: &str) -> CpuSlice {
    CpuSlice {
        cpu,
        start_ns,
        end_ns,
        pid,
        name: name.into(),
        scheduler: false,
    }
}

fn svg(
    nr_cpus: u32,
    slices: &[CpuSlice],
    from: Option<u64>,
    to: Option<u64>,
) -> std::io::Result<String> {
    let mut out = Vec::new();
    write_svg(&mut out, nr_cpus, slices, from, to, "test <run> & co")?;
    Ok(String::from_utf8(out).expect("UTF-8"))
}

/// Checks the document is well-formed enough: tags nest and close, text has no
/// stray `<`, and `&` only starts the entities the writer uses.
fn assert_well_formed(doc: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = doc;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "bare & in {:?}",
                &entity[..entity.len().min(20)]
            );
        }
        let close = rest[open..].find('>').expect("tag closes") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "< inside a tag: {tag}");
        if tag.starts_with('?') {
            // The XML declaration.
        } else if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "closing tag {name}");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap();
            stack.push(name);
        }
        rest = &rest[close + 1..];
    }
    assert!(rest.trim().is_empty());
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

/// The `<rect` elements of each lane, by CPU.
fn lane_rects(doc: &str) -> Vec<Vec<&str>> {
    let mut lanes = Vec::new();
    for (n, part) in doc.split(r#"<g class="lane" id="cpu"#).skip(1).enumerate() {
        let (id, body) = part.split_once('"').unwrap();
        assert_eq!(id, n.to_string(), "lanes in CPU order");
        let body = &body[..body.find("</g>").unwrap()];
        lanes.push(
            body.match_indices("<rect")
                .map(|(i, _)| &body[i..])
                .collect(),
        );
    }
    lanes
}

/// An attribute of an element's text.
fn attr<'a>(element: &'a str, name: &str) -> &'a str {
    let key = format!(" {name}=\"");
    let start = element.find(&key).unwrap() + key.len();
    &element[start..start + element[start..].find('"').unwrap()]
}

#[test]
fn every_cpu_has_a_lane_and_every_slice_a_rectangle() {
    let slices = [
        slice(0, 0, 10 * MS, 1, "a"),
        slice(0, 20 * MS, 30 * MS, 2, "b"),
        slice(2, 5 * MS, 40 * MS, 3, "c"),
        slice(1, 5 * MS, 6 * MS, 0, "idle"),
    ];
    let doc = svg(4, &slices, None, None).unwrap();
    assert_well_formed(&doc);
    let lanes = lane_rects(&doc);
    assert_eq!(lanes.len(), 4);
    assert_eq!(lanes.iter().map(Vec::len).collect::<Vec<_>>(), [2, 0, 1, 0]);
    // Window 0..40 ms over 1200 px: 30 px per ms.
    let a = lanes[0][0];
    assert_eq!((attr(a, "x"), attr(a, "width")), ("0", "300"));
    let b = lanes[0][1];
    assert_eq!((attr(b, "x"), attr(b, "width")), ("600", "300"));
    assert!(b.contains("<title>b (pid 2)\nstart 0.020000 s, ran 10.000 ms</title>"));
    assert!(doc.contains("cpu 3</text>"));
    // The legend names the tasks; the escaped title heads the picture.
    assert!(doc.contains(">c 35.000 ms ("));
    assert!(doc.contains("test &lt;run&gt; &amp; co"));
    // Ticks every 5 ms.
    for label in ["0 ms", "5 ms", "20 ms", "40 ms"] {
        assert!(doc.contains(&format!(">{label}</text>")), "tick {label}");
    }
}

#[test]
fn more_lanes_when_a_slice_names_a_higher_cpu() {
    let doc = svg(1, &[slice(3, 0, 10, 1, "a")], None, None).unwrap();
    assert_eq!(lane_rects(&doc).len(), 4);
}

#[test]
fn slices_are_clipped_to_the_window() {
    let slices = [
        slice(0, 0, 100 * MS, 1, "a"),
        slice(0, 200 * MS, 300 * MS, 2, "b"),
        slice(1, 120 * MS, 400 * MS, 3, "c"),
    ];
    let doc = svg(2, &slices, Some(50 * MS), Some(150 * MS)).unwrap();
    assert_well_formed(&doc);
    let lanes = lane_rects(&doc);
    assert_eq!(lanes[0].len(), 1);
    assert_eq!(
        (attr(lanes[0][0], "x"), attr(lanes[0][0], "width")),
        ("0", "600")
    );
    assert!(lanes[0][0].contains("ran 50.000 ms"));
    assert_eq!(
        (attr(lanes[1][0], "x"), attr(lanes[1][0], "width")),
        ("840", "360")
    );
    assert!(!doc.contains("(pid 2)"));
    // Labels count from the first slice: the window starts at 50 ms.
    assert!(doc.contains(">50 ms</text>") && doc.contains(">150 ms</text>"));
    assert!(!doc.contains(">0 ms</text>"));
}

#[test]
fn sub_pixel_slices_are_aggregated() {
    // A minute on 2 CPUs in a million 120 µs slices of 3 alternating threads.
    let names = ["cc1", "as", "ld"];
    let mut slices = Vec::with_capacity(1_000_000);
    for i in 0..1_000_000u64 {
        let cpu = (i % 2) as u32;
        let start = (i / 2) * 120_000;
        let pid = (i / 2 % 3) as Pid + 1;
        slices.push(slice(
            cpu,
            start,
            start + 120_000,
            pid,
            names[pid as usize - 1],
        ));
    }
    let doc = svg(2, &slices, None, None).unwrap();
    let lanes = lane_rects(&doc);
    assert_eq!(lanes.len(), 2);
    for lane in &lanes {
        assert!(
            !lane.is_empty() && lane.len() <= LANE_WIDTH,
            "{} rects",
            lane.len()
        );
    }
    assert!(doc.len() < 2_000_000, "{} bytes", doc.len());
    assert_well_formed(&doc);
    // Fully busy lanes: opaque, and each column says what else ran in it.
    assert!(!lanes[0][0].contains("fill-opacity"));
    assert!(lanes[0][0].contains("other tasks ran"));
    for label in ["0 s", "10 s", "60 s"] {
        assert!(doc.contains(&format!(">{label}</text>")), "tick {label}");
    }
}

#[test]
fn sparse_columns_are_translucent_and_merged() {
    // 1 µs of work every 10 ms for a second: every column is a little busy.
    let slices: Vec<CpuSlice> = (0..100)
        .map(|i| slice(0, i * 10 * MS, i * 10 * MS + 1_000, 7, "tick"))
        .collect();
    let doc = svg(1, &slices, Some(0), Some(1_000 * MS)).unwrap();
    let lanes = lane_rects(&doc);
    assert_eq!(lanes[0].len(), 100, "separate: idle columns between");
    assert_eq!(attr(lanes[0][0], "fill-opacity"), "0.25");
    assert_eq!(attr(lanes[0][0], "width"), "1");
}

#[test]
fn adjacent_slices_of_a_task_make_one_rectangle() {
    let slices: Vec<CpuSlice> = (0..1000)
        .map(|i| slice(0, i * 1_000, (i + 1) * 1_000, 7, "worker"))
        .collect();
    let doc = svg(1, &slices, None, None).unwrap();
    let lanes = lane_rects(&doc);
    assert_eq!(lanes[0].len(), 1);
    assert_eq!(attr(lanes[0][0], "width"), "1200");
    assert!(lanes[0][0].contains("ran 1.000 ms"));
}

#[test]
fn colours_cluster_by_base_name_and_the_scheduler_is_black() {
    assert_eq!(base_name("cc1"), "cc");
    assert_eq!(base_name("kworker/0:1"), "kworker");
    assert_eq!(base_name("kworker/u8:2-events"), "kworker");
    assert_eq!(base_name("python3.12"), "python");
    assert_eq!(base_name("cc1plus"), "cc1plus");
    assert_eq!(base_name("1234"), "1234");

    let mut slices = vec![
        slice(0, 0, 10, 1, "kworker/0:1"),
        slice(0, 20, 30, 2, "kworker/1:2"),
        slice(0, 40, 50, 3, "bash"),
        slice(0, 60, 70, 4, "rustland"),
    ];
    slices[3].scheduler = true;
    let doc = svg(1, &slices, None, None).unwrap();
    let lanes = lane_rects(&doc);
    let fills: Vec<&str> = lanes[0].iter().map(|r| attr(r, "fill")).collect();
    assert_eq!(fills.len(), 4);
    assert_eq!(fills[0], fills[1]);
    assert_ne!(fills[0], fills[2]);
    assert_eq!(fills[3], "#000000");
    assert!(lanes[0][3].contains("[scheduler]"));
    // One legend entry for both kworkers.
    assert!(doc.contains(">kworker* (2 threads) 20 ns ("));
}

#[test]
fn names_are_escaped() {
    let doc = svg(1, &[slice(0, 0, 10, 1, "a<b>&\"c'\u{1}")], None, None).unwrap();
    assert_well_formed(&doc);
    assert!(doc.contains("a&lt;b&gt;&amp;&quot;c&apos;? (pid 1)"));
}

#[test]
fn an_empty_window_says_no_activity() {
    let doc = svg(2, &[], None, None).unwrap();
    assert_well_formed(&doc);
    assert!(doc.contains(">no activity</text>"));
    assert_eq!(lane_rects(&doc).len(), 2);

    let slices = [slice(0, 0, 10 * MS, 1, "a")];
    let doc = svg(2, &slices, Some(20 * MS), Some(30 * MS)).unwrap();
    assert_well_formed(&doc);
    assert!(doc.contains(">no activity</text>"));
    assert!(lane_rects(&doc).iter().all(Vec::is_empty));
    assert!(doc.contains(">20 ms</text>"), "the axis is drawn");

    let doc = svg(2, &slices, Some(20 * MS), None).unwrap();
    assert!(doc.contains(">no activity</text>"));
}

#[test]
fn an_invalid_range_is_an_error() {
    let slices = [slice(0, 0, 10 * MS, 1, "a")];
    for (from, to) in [(5 * MS, 5 * MS), (6 * MS, 5 * MS)] {
        let err = svg(1, &slices, Some(from), Some(to)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("must start before it ends"));
    }
}

#[test]
fn a_window_shorter_than_the_lane_is_drawn_in_wider_columns() {
    let doc = svg(1, &[slice(0, 0, 300, 1, "a")], Some(0), Some(600)).unwrap();
    let lanes = lane_rects(&doc);
    assert_eq!(
        (attr(lanes[0][0], "x"), attr(lanes[0][0], "width")),
        ("0", "600")
    );
}
