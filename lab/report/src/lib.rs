//! codescale-report
