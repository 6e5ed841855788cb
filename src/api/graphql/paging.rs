//! Relay connection arguments: `first` or `last` (1 to 100) is required, as GitHub's API does,
//! with `after` / `before` cursors.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};

use crate::read::{Direction, Page, PageRequest};

use super::errors::api_error;
use super::ids::decode_cursor;

pub const MAX_PAGE: i32 = 100;

pub fn page_request(
    first: Option<i32>,
    last: Option<i32>,
    after: Option<String>,
    before: Option<String>,
) -> async_graphql::Result<PageRequest> {
    let (direction, size, cursor) = match (first, last) {
        (Some(first), None) => (Direction::Forward, first, after),
        (None, Some(last)) => (Direction::Backward, last, before),
        _ => {
            return Err(api_error(
                "INVALID_ARGUMENT",
                "give exactly one of `first` or `last`, from 1 to 100",
            ));
        }
    };
    if !(1..=MAX_PAGE).contains(&size) {
        return Err(api_error(
            "INVALID_ARGUMENT",
            "`first` and `last` must be 1 to 100",
        ));
    }
    let cursor = match cursor {
        Some(text) => Some(
            decode_cursor(&text)
                .ok_or_else(|| api_error("INVALID_ARGUMENT", "the cursor is not valid"))?,
        ),
        None => None,
    };
    Ok(PageRequest {
        direction,
        size: usize::try_from(size).unwrap_or(1),
        cursor,
    })
}

/// Complexity of a connection field: the page size times its nodes' cost, plus one.
pub fn connection_cost(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let size = first.or(last).unwrap_or(0).clamp(0, MAX_PAGE);
    usize::try_from(size).unwrap_or(0) * child + 1
}

/// A Relay connection over a page: `pageInfo` says what lies beyond it in the direction asked
/// for, and whether the page started from a cursor on the other side. `edge` gives each row its
/// cursor and node.
pub fn connection<R, N: OutputType>(
    request: &PageRequest,
    page: Page<R>,
    edge: impl Fn(R) -> (String, N),
) -> Connection<String, N> {
    let from_cursor = request.cursor.is_some();
    let (has_previous, has_next) = match request.direction {
        Direction::Forward => (from_cursor, page.has_more),
        Direction::Backward => (page.has_more, from_cursor),
    };
    let mut connection = Connection::new(has_previous, has_next);
    connection.edges.extend(page.rows.into_iter().map(|row| {
        let (cursor, node) = edge(row);
        Edge::new(cursor, node)
    }));
    connection
}
