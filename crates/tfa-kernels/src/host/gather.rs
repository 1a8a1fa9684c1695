//! Gather along an axis (GatherV2).
