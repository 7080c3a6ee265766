//! Integration tests of the throwaway PostgreSQL server.

mod server;
