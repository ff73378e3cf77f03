//! Routing: the dial plans that decide where a call goes (entry numbers, menus, time
//! conditions, queues, overflow, forwards), loaded from `dialplans/` and validated as a
//! whole before they go live. Sans-IO apart from reading the files.

pub mod flow;
pub mod plan;
