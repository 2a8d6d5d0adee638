//! Nice levels to scheduling weights.
//!
//! The kernel gives each nice level a weight so that one nice step is about a 10%
//! change in CPU share (each level weighs about 1.25 times the next). The values are
//! the kernel's published table for nice -20..=19, with 1024 for nice 0; sched_ext
//! shows tasks the same weights rescaled so that nice 0 is 100 (rounded to the
//! closest integer, at least 1), which is what a policy sees in `QueuedTask::weight`.

/// The kernel's weight of nice 0 (`NICE_0_LOAD` without the fixed-point shift).
pub const NICE_0_WEIGHT: u64 = 1024;

/// Weight per nice level, index 0 is nice -20.
const NICE_TO_WEIGHT: [u64; 40] = [
    88761, 71755, 56483, 46273, 36291, // -20 .. -16
    29154, 23254, 18705, 14949, 11916, // -15 .. -11
    9548, 7620, 6100, 4904, 3906, // -10 .. -6
    3121, 2501, 1991, 1586, 1277, // -5 .. -1
    1024, 820, 655, 526, 423, // 0 .. 4
    335, 272, 215, 172, 137, // 5 .. 9
    110, 87, 70, 56, 45, // 10 .. 14
    36, 29, 23, 18, 15, // 15 .. 19
];

/// The kernel's weight of `nice` (clamped to -20..=19).
///
/// ```
/// use schedkit_sim::weights::kernel_weight;
/// assert_eq!(kernel_weight(0), 1024);
/// assert_eq!(kernel_weight(-20), 88761);
/// ```
pub fn kernel_weight(nice: i32) -> u64 {
    NICE_TO_WEIGHT[(nice.clamp(-20, 19) + 20) as usize]
}

/// The weight sched_ext reports for `nice`: the kernel's weight scaled so nice 0 is
/// 100, rounded to the closest integer, in 1..=10000.
///
/// ```
/// use schedkit_sim::weights::scx_weight;
/// assert_eq!(scx_weight(0), 100);
/// assert_eq!(scx_weight(19), 1);
/// assert_eq!(scx_weight(-20), 8668);
/// ```
pub fn scx_weight(nice: i32) -> u32 {
    let w = (kernel_weight(nice) * 100 + NICE_0_WEIGHT / 2) / NICE_0_WEIGHT;
    w.clamp(1, 10_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_nice_levels_differ_by_about_a_quarter() {
        for nice in -20..19 {
            let r = kernel_weight(nice) as f64 / kernel_weight(nice + 1) as f64;
            assert!((1.15..1.35).contains(&r), "nice {nice}: ratio {r}");
        }
    }

    #[test]
    fn scx_weights_are_monotonic_and_in_range() {
        for nice in -20..19 {
            assert!(scx_weight(nice) >= scx_weight(nice + 1));
        }
        assert_eq!(scx_weight(5), 33);
    }
}
