//! Cursor pagination shared by Anthropic's list endpoints (§11.2): `limit`, `after_id`,
//! `before_id` in; `{data, has_more, first_id, last_id}` out.

use axum::extract::Query;
use axum::http::Uri;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Default, Deserialize)]
struct RawQuery {
    limit: Option<String>,
    after_id: Option<String>,
    before_id: Option<String>,
}

#[derive(Debug)]
pub(crate) struct PageQuery {
    limit: usize,
    cursor: Cursor,
}

#[derive(Debug)]
enum Cursor {
    First,
    After(String),
    Before(String),
}

impl PageQuery {
    pub(crate) fn from_uri(uri: &Uri) -> Result<PageQuery, ApiError> {
        let Query(raw) = Query::<RawQuery>::try_from_uri(uri)
            .map_err(|e| ApiError::invalid(format!("Invalid query string: {e}")))?;
        let limit = match raw.limit {
            None => DEFAULT_LIMIT,
            Some(limit) => limit
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("limit: Input should be a valid integer"))?,
        };
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(format!(
                "limit: Input should be between 1 and {MAX_LIMIT}"
            )));
        }
        let cursor = match (raw.after_id, raw.before_id) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "Only one of after_id and before_id may be given",
                ));
            }
            (Some(after), None) => Cursor::After(after),
            (None, Some(before)) => Cursor::Before(before),
            (None, None) => Cursor::First,
        };
        Ok(PageQuery { limit, cursor })
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    pub(crate) data: Vec<T>,
    pub(crate) has_more: bool,
    pub(crate) first_id: Option<String>,
    pub(crate) last_id: Option<String>,
}

/// The page of `items` (already in list order) that `query` asks for. A cursor naming no
/// item yields an empty page.
pub(crate) fn page<T>(items: Vec<T>, id: impl Fn(&T) -> &str, query: &PageQuery) -> Page<T> {
    let position = |wanted: &str| items.iter().position(|item| id(item) == wanted);
    let (start, end, has_more) = match &query.cursor {
        Cursor::First => {
            let end = items.len().min(query.limit);
            (0, end, end < items.len())
        }
        Cursor::After(after) => match position(after) {
            Some(i) => {
                let start = i + 1;
                let end = items.len().min(start + query.limit);
                (start, end, end < items.len())
            }
            None => (0, 0, false),
        },
        Cursor::Before(before) => match position(before) {
            Some(end) => {
                let start = end.saturating_sub(query.limit);
                (start, end, start > 0)
            }
            None => (0, 0, false),
        },
    };
    let data: Vec<T> = items.into_iter().skip(start).take(end - start).collect();
    Page {
        first_id: data.first().map(|item| id(item).to_owned()),
        last_id: data.last().map(|item| id(item).to_owned()),
        has_more,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> PageQuery {
        PageQuery::from_uri(&format!("/x?{q}").parse().unwrap()).unwrap()
    }

    fn ids(page: &Page<&'static str>) -> Vec<&'static str> {
        page.data.clone()
    }

    const ITEMS: [&str; 5] = ["a", "b", "c", "d", "e"];

    #[test]
    fn walks_forward_and_backward() {
        let first = page(ITEMS.to_vec(), |s| s, &query("limit=2"));
        assert_eq!(ids(&first), ["a", "b"]);
        assert!(first.has_more);
        let next = page(ITEMS.to_vec(), |s| s, &query("limit=2&after_id=b"));
        assert_eq!(ids(&next), ["c", "d"]);
        let last = page(ITEMS.to_vec(), |s| s, &query("limit=2&after_id=d"));
        assert_eq!(ids(&last), ["e"]);
        assert!(!last.has_more);
        let back = page(ITEMS.to_vec(), |s| s, &query("limit=2&before_id=e"));
        assert_eq!(ids(&back), ["c", "d"]);
        assert!(back.has_more);
        let front = page(ITEMS.to_vec(), |s| s, &query("limit=2&before_id=b"));
        assert_eq!(ids(&front), ["a"]);
        assert!(!front.has_more);
        assert_eq!(front.first_id.as_deref(), Some("a"));
    }

    #[test]
    fn rejects_bad_limits() {
        for q in ["limit=0", "limit=1001", "limit=x", "after_id=a&before_id=b"] {
            assert!(
                PageQuery::from_uri(&format!("/x?{q}").parse().unwrap()).is_err(),
                "{q}"
            );
        }
    }
}
