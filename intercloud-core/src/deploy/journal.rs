//! The deployment journal: every intent and outcome, durably, before acting on it.
//!
//! [`FileJournal`] is an append-only file, one record per line:
//! `<16 hex digits> <JSON>\n`, where the hex digits are the first 8 bytes of the
//! SHA-256 of the JSON. Each append is written and `fsync`'d before it returns. When
//! the file is opened, a last line that is incomplete or fails its checksum (a write
//! torn by a crash) is ignored and cut off, keeping every record before it; a bad line
//! followed by good ones is corruption and refused with an error naming the line.
//!
//! The journal holds no secrets: specs are recorded without user data.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::plan::{Batch, Plan};
use super::policy::{DeployResult, FailurePolicy};
use crate::model::{SiteId, VmId};
use crate::vpn::{LinkId, SiteEndpoint};
use crate::{Error, ErrorKind, Result};

/// One journal record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// A deployment began with this plan and policy (the first record).
    Started {
        /// The plan: request, topology, nodes, batches.
        plan: Box<Plan>,
        /// The failure policy.
        policy: FailurePolicy,
    },
    /// A create call is about to be made (written before the call).
    CreateIntent {
        /// The batch: site, key, role, level, offering, image, node names by index.
        batch: Batch,
    },
    /// A create call returned these ids, by index.
    CreateOutcome {
        /// The site.
        site: SiteId,
        /// The batch key.
        key: String,
        /// The VM ids by index.
        vm_ids: Vec<VmId>,
    },
    /// A create call failed for good at this site (its nodes go elsewhere or fail).
    CreateFailed {
        /// The site.
        site: SiteId,
        /// The batch key.
        key: String,
        /// The error kind.
        kind: ErrorKind,
        /// The error message.
        message: String,
    },
    /// A VM is about to be deleted (written before the call).
    DeleteIntent {
        /// The site.
        site: SiteId,
        /// The VM.
        vm_id: VmId,
        /// Its batch key, when tagged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// A VM delete call succeeded.
    Deleted {
        /// The site.
        site: SiteId,
        /// The VM.
        vm_id: VmId,
    },
    /// A site's overlay endpoint is about to be prepared (written before the call).
    EndpointIntent {
        /// The site.
        site: SiteId,
    },
    /// A link between two sites is about to be connected (written before the call).
    LinkIntent {
        /// The two sites.
        between: [SiteId; 2],
    },
    /// A site's overlay endpoint was prepared.
    EndpointPrepared {
        /// The endpoint (no secrets).
        endpoint: SiteEndpoint,
    },
    /// A link between two sites was connected.
    LinkConnected {
        /// The two sites.
        between: [SiteId; 2],
        /// The fabric's link id.
        link: LinkId,
    },
    /// A link was removed.
    LinkRemoved {
        /// The link.
        link: LinkId,
    },
    /// A site's endpoint was released.
    EndpointReleased {
        /// The site.
        site: SiteId,
    },
    /// A node was moved to another site (re-placement or repair).
    NodeMoved {
        /// The node.
        node: String,
        /// Its old site.
        from: SiteId,
        /// Its new site.
        to: SiteId,
    },
    /// A deploy, resume or repair pass ended.
    Finished {
        /// How it ended.
        result: DeployResult,
    },
    /// Everything the deployment made was deleted (rollback or destroy), verified.
    Destroyed,
}

/// Where a deployment records what it does. Implementations must make each append
/// durable before returning (the deployer creates nothing whose intent is not durable).
pub trait Journal: Send + Sync + fmt::Debug {
    /// Appends one record durably.
    ///
    /// # Errors
    /// `Journal` when it cannot be written; the deployer then stops creating.
    fn append(&self, record: &Record) -> Result<()>;

    /// Every record, oldest first.
    ///
    /// # Errors
    /// `Journal` when the records cannot be read.
    fn records(&self) -> Result<Vec<Record>>;
}

/// A journal in memory, for tests; can be told to fail writes.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    inner: Mutex<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    records: Vec<Record>,
    fail_after: Option<usize>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every append fail once `n` more appends have succeeded.
    pub fn fail_after(&self, n: usize) {
        let mut g = self.lock();
        g.fail_after = Some(g.records.len() + n);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Journal for MemoryJournal {
    fn append(&self, record: &Record) -> Result<()> {
        let mut g = self.lock();
        if g.fail_after.is_some_and(|n| g.records.len() >= n) {
            return Err(Error::new(
                ErrorKind::Journal,
                "journal write failed (injected)",
            ));
        }
        g.records.push(record.clone());
        Ok(())
    }

    fn records(&self) -> Result<Vec<Record>> {
        Ok(self.lock().records.clone())
    }
}

/// The default journal: an append-only, checksummed, fsync'd file.
pub struct FileJournal {
    path: PathBuf,
    inner: Mutex<FileInner>,
}

struct FileInner {
    file: File,
    records: Vec<Record>,
}

impl fmt::Debug for FileJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileJournal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What [`FileJournal::open_checked`] found at the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// Every line was whole and valid.
    Clean,
    /// The last line was torn or failed its checksum; these bytes were cut off.
    Discarded {
        /// How many bytes were dropped.
        bytes: usize,
    },
}

fn checksum(json: &str) -> String {
    hex::encode(&Sha256::digest(json.as_bytes())[..8])
}

/// One journal line (with its newline) for `record`.
pub fn encode_line(record: &Record) -> Result<String> {
    let json = serde_json::to_string(record)
        .map_err(|e| Error::new(ErrorKind::Journal, format!("cannot encode a record: {e}")))?;
    Ok(format!("{} {json}\n", checksum(&json)))
}

fn decode_line(line: &str) -> Option<Record> {
    let (sum, json) = line.split_once(' ')?;
    if sum.len() != 16 || checksum(json) != sum {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Parses a journal's bytes: the good records and the length of the good prefix.
///
/// # Errors
/// `Journal` when a bad line is followed by good ones (corruption, not a torn write).
pub fn parse(bytes: &[u8], path: &Path) -> Result<(Vec<Record>, usize)> {
    let mut records = Vec::new();
    let mut good_len = 0usize;
    let mut pos = 0usize;
    let mut line_no = 0usize;
    let mut bad_at: Option<usize> = None;
    while pos < bytes.len() {
        line_no += 1;
        let end = bytes[pos..].iter().position(|b| *b == b'\n');
        let Some(end) = end else {
            // No newline: a torn last write.
            break;
        };
        let line = &bytes[pos..pos + end];
        let decoded = std::str::from_utf8(line).ok().and_then(decode_line);
        match (decoded, bad_at) {
            (Some(_), Some(bad)) => {
                return Err(Error::new(
                    ErrorKind::Journal,
                    format!(
                        "journal {} is corrupted at line {bad} (good records follow it); \
                         it cannot be trusted — destroy the cluster by its tag instead",
                        path.display()
                    ),
                ));
            }
            (Some(r), None) => {
                records.push(r);
                good_len = pos + end + 1;
            }
            (None, _) => {
                bad_at.get_or_insert(line_no);
            }
        }
        pos += end + 1;
    }
    Ok((records, good_len))
}

impl FileJournal {
    /// Opens (or creates) the journal at `path`, dropping a torn or corrupted last line.
    ///
    /// # Errors
    /// `Journal` when the file cannot be read or written, or is corrupted before its end.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_checked(path).map(|(j, _)| j)
    }

    /// Like [`FileJournal::open`], also saying whether a bad tail was cut off.
    ///
    /// # Errors
    /// As [`FileJournal::open`].
    pub fn open_checked(path: impl AsRef<Path>) -> Result<(Self, Tail)> {
        let path = path.as_ref().to_path_buf();
        let io = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::Journal,
                format!("cannot {what} journal {}: {e}", path.display()),
            )
        };
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io("open", e))?;
        if !existed {
            // Make the new file's directory entry durable too (best effort: not every
            // platform can open a directory).
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io("read", e))?;
        let (records, good_len) = parse(&bytes, &path)?;
        let tail = if good_len < bytes.len() {
            file.set_len(good_len as u64)
                .map_err(|e| io("truncate the torn tail of", e))?;
            file.sync_all().map_err(|e| io("sync", e))?;
            Tail::Discarded {
                bytes: bytes.len() - good_len,
            }
        } else {
            Tail::Clean
        };
        Ok((
            Self {
                path,
                inner: Mutex::new(FileInner { file, records }),
            },
            tail,
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Journal for FileJournal {
    fn append(&self, record: &Record) -> Result<()> {
        let line = encode_line(record)?;
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::Journal,
                format!("cannot write journal {}: {e}", self.path.display()),
            )
        };
        g.file.write_all(line.as_bytes()).map_err(io)?;
        g.file.sync_data().map_err(io)?;
        g.records.push(record.clone());
        Ok(())
    }

    fn records(&self) -> Result<Vec<Record>> {
        Ok(self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .records
            .clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u32) -> Record {
        Record::Deleted {
            site: SiteId::new("a"),
            vm_id: VmId::new(i.to_string()),
        }
    }

    fn ids(rs: &[Record]) -> Vec<String> {
        rs.iter()
            .map(|r| match r {
                Record::Deleted { vm_id, .. } => vm_id.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn torn_and_corrupted_tails_are_cut_keeping_earlier_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        let j = FileJournal::open(&path).unwrap();
        for i in 0..3 {
            j.append(&rec(i)).unwrap();
        }
        drop(j);
        // A torn write: half a line, no newline.
        let full = std::fs::read(&path).unwrap();
        let mut torn = full.clone();
        torn.extend_from_slice(&encode_line(&rec(9)).unwrap().as_bytes()[..20]);
        std::fs::write(&path, &torn).unwrap();
        let (j, tail) = FileJournal::open_checked(&path).unwrap();
        assert_eq!(tail, Tail::Discarded { bytes: 20 });
        assert_eq!(ids(&j.records().unwrap()), ["0", "1", "2"]);
        j.append(&rec(3)).unwrap();
        drop(j);
        let (j, tail) = FileJournal::open_checked(&path).unwrap();
        assert_eq!(tail, Tail::Clean);
        assert_eq!(ids(&j.records().unwrap()), ["0", "1", "2", "3"]);
        drop(j);
        // A whole last line with a flipped byte fails its checksum.
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (j, tail) = FileJournal::open_checked(&path).unwrap();
        assert!(matches!(tail, Tail::Discarded { .. }));
        assert_eq!(ids(&j.records().unwrap()), ["0", "1", "2"]);
    }

    #[test]
    fn corruption_before_good_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        let j = FileJournal::open(&path).unwrap();
        for i in 0..3 {
            j.append(&rec(i)).unwrap();
        }
        drop(j);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] = b'z';
        std::fs::write(&path, &bytes).unwrap();
        let e = FileJournal::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Journal);
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn memory_journal_fails_on_demand() {
        let j = MemoryJournal::new();
        j.fail_after(1);
        j.append(&rec(0)).unwrap();
        assert_eq!(j.append(&rec(1)).unwrap_err().kind(), ErrorKind::Journal);
        assert_eq!(j.records().unwrap().len(), 1);
    }
}
