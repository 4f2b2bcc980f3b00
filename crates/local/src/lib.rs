pub mod asl;
pub mod demo;
pub mod runner;
pub mod server;
