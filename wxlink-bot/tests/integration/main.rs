//! Integration tests of wxlink-bot.

mod postgres;
mod store_contract;
