//! Reading records in pages, so exports and reports over millions of records never hold
//! more than one page in memory.

use portcullis_store::Store;

use crate::clock;
use crate::error::AuditError;
use crate::record::Record;
use crate::table;

/// Records per page.
pub const PAGE: u32 = 1000;

/// The stored records in sequence order, one page at a time: all of them, or those with
/// `ts` at or after a point in time.
#[derive(Debug)]
pub struct Pages<'a> {
    store: &'a Store,
    since: Option<String>,
    after: u64,
    page: u32,
    done: bool,
}

impl<'a> Pages<'a> {
    /// Every stored record.
    pub fn all(store: &'a Store) -> Pages<'a> {
        Pages {
            store,
            since: None,
            after: 0,
            page: PAGE,
            done: false,
        }
    }

    /// Records whose `ts` is at or after `since_ms` (Unix milliseconds).
    pub fn since(store: &'a Store, since_ms: i64) -> Pages<'a> {
        Pages {
            since: Some(clock::format_ms(since_ms)),
            ..Pages::all(store)
        }
    }

    /// Pages of `page` records instead of [`PAGE`].
    pub fn with_page_size(mut self, page: u32) -> Pages<'a> {
        self.page = page.max(1);
        self
    }

    /// The next page, `None` after the last one.
    pub async fn next(&mut self) -> Result<Option<Vec<Record>>, AuditError> {
        if self.done {
            return Ok(None);
        }
        let page = match &self.since {
            None => table::records_after(self.store, self.after, self.page).await?,
            Some(since) => table::records_since(self.store, since, self.after, self.page).await?,
        };
        if page.len() < self.page as usize {
            self.done = true;
        }
        match page.last() {
            Some(last) => {
                self.after = last.seq;
                Ok(Some(page))
            }
            None => Ok(None),
        }
    }
}
