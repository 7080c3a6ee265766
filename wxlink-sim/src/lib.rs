//! A simulated iLink API server and CDN, in-process or standalone, for
//! tests, the demo and bot authors' own tests.
