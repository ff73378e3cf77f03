//! The pure part of SIP the core needs: dialled numbers in the forms trunks send
//! ([`numbers`]). Transport, transactions, dialogs and the registrar are the app's.

pub mod numbers;
