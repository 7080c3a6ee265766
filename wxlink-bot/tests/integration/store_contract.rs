//! The store conformance suite, run against every backend: the in-memory
//! reference, SQLite and PostgreSQL.

mod memory {
    use std::sync::Arc;

    use wxlink_bot::store::{MemoryStore, Store};

    async fn fresh(_case: &'static str) -> Option<Arc<dyn Store>> {
        Some(Arc::new(MemoryStore::new()))
    }

    wxlink_bot::store_conformance_tests!(fresh);
}

mod sqlite {
    use std::sync::Arc;

    use wxlink_bot::store::{SqliteStore, Store};

    async fn fresh(_case: &'static str) -> Option<Arc<dyn Store>> {
        let store = SqliteStore::open_in_memory().expect("an in-memory SQLite store");
        Some(Arc::new(store))
    }

    wxlink_bot::store_conformance_tests!(fresh);
}

mod postgres {
    use std::sync::Arc;

    use wxlink_bot::store::Store;

    async fn fresh(case: &'static str) -> Option<Arc<dyn Store>> {
        let store = crate::postgres::fresh_store(case).await?;
        Some(Arc::new(store))
    }

    wxlink_bot::store_conformance_tests!(fresh);
}
