//! One module per command of the launcher (the sessions are in `session`, the menu in
//! `menu`, starting a mode in `start`).

pub mod check;
pub mod drill;
pub mod grade;
pub mod guide;
pub mod hint;
pub mod history;
pub mod reset;
pub mod solution;
pub mod status;
