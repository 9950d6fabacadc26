//! Flow analysis against real tools: placeholder replaced below.
