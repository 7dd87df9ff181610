//! The broker's side of the control plane.
//!
//! - [`follower`]: long-polls the controllers' metadata feed, keeps the image, and turns it
//!   into partition roles.
//! - [`lifecycle`]: registration, heartbeats, fencing, and the controlled shutdown.

pub mod follower;
pub mod lifecycle;
