//! The simulator (to come).
