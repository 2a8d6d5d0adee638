//! Workloads (to come).
