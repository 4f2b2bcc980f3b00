pub mod asl;
pub mod binaries;
pub mod coldstart;
pub mod demo;
pub mod reconciler;
pub mod runner;
pub mod server;
pub mod sfn_api;
