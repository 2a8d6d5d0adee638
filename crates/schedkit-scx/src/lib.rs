//! scx (to come).
