//! Fetching and importing datasets.
