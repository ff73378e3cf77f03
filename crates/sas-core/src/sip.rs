//! The pure part of SIP the core needs: dialled numbers in the forms trunks send
//! ([`numbers`]) and who sent a request, the trunk or a seat ([`origin`]). Transport,
//! transactions, dialogs and the registrar are the app's.

pub mod numbers;
pub mod origin;
