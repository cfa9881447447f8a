//! PostgreSQL's `pgoutput` logical decoding messages, protocol version 1 (PostgreSQL's
//! "Logical Replication Message Formats"): what a replication slot streams for a publication,
//! decoded as far as change capture needs (which table, which columns, their text values).
//! Pure: bytes in, messages out.

use std::fmt;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const POSTGRES_EPOCH: i64 = 946_684_800;

/// Now, in the microseconds since PostgreSQL's epoch that a [`Message::Begin`] holds.
pub fn now_micros() -> i64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    unix.as_micros() as i64 - POSTGRES_EPOCH * 1_000_000
}

/// One `pgoutput` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A transaction begins.
    Begin {
        /// The LSN of its commit record.
        final_lsn: u64,
        /// When it committed: microseconds since 2000-01-01 UTC (PostgreSQL's epoch; see
        /// [`now_micros`]).
        commit_time: i64,
        /// Its transaction id.
        xid: u32,
    },
    /// A transaction committed.
    Commit {
        /// The LSN of the commit record.
        commit_lsn: u64,
        /// The LSN just past it: where a reader that has handled the transaction resumes.
        end_lsn: u64,
    },
    /// A table's shape, sent before the first change of it in a session (and again when it
    /// changes).
    Relation(Relation),
    /// A row inserted.
    Insert {
        /// The table's oid.
        relation: u32,
        /// The new row.
        new: Tuple,
    },
    /// A row updated: `old` is the old row (`REPLICA IDENTITY FULL`) or its old key, sent only
    /// when the key changed (or the identity is full).
    Update {
        /// The table's oid.
        relation: u32,
        /// The old key or row, when sent.
        old: Option<Tuple>,
        /// The new row.
        new: Tuple,
    },
    /// A row deleted: its key (the replica identity's columns), or the whole row with
    /// `REPLICA IDENTITY FULL`.
    Delete {
        /// The table's oid.
        relation: u32,
        /// The old key or row.
        old: Tuple,
    },
    /// Tables truncated.
    Truncate {
        /// Their oids.
        relations: Vec<u32>,
    },
    /// Anything else (origin, type, logical message): not a change of a row.
    Other(u8),
}

/// A table as `pgoutput` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Its oid.
    pub oid: u32,
    /// Its schema.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its replica identity: `d` default (the primary key), `n` nothing, `f` full, `i` an index.
    pub replica_identity: u8,
    /// Its columns, in order.
    pub columns: Vec<Column>,
}

/// A column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Part of the replica identity (the key an update or delete carries).
    pub key: bool,
}

/// The values of a row, by the relation's column order.
pub type Tuple = Vec<Value>;

/// One column's value in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// NULL, or a column an old key leaves out.
    Null,
    /// A TOASTed value the update did not change (not sent).
    Unchanged,
    /// The value in PostgreSQL's text form.
    Text(String),
}

/// Bytes that are not a `pgoutput` message of protocol version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable pgoutput message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one message.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { bytes, at: 0 };
    let tag = r.u8()?;
    let message = match tag {
        b'B' => {
            let final_lsn = r.u64()?;
            let commit_time = r.u64()? as i64;
            Message::Begin {
                final_lsn,
                commit_time,
                xid: r.u32()?,
            }
        }
        b'C' => {
            let _flags = r.u8()?;
            let commit_lsn = r.u64()?;
            let end_lsn = r.u64()?;
            Message::Commit {
                commit_lsn,
                end_lsn,
            }
        }
        b'R' => {
            let oid = r.u32()?;
            let namespace = r.string()?;
            let name = r.string()?;
            let replica_identity = r.u8()?;
            let count = r.u16()?;
            let mut columns = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let flags = r.u8()?;
                let name = r.string()?;
                let _type_oid = r.u32()?;
                let _type_modifier = r.u32()?;
                columns.push(Column {
                    name,
                    key: flags & 1 == 1,
                });
            }
            Message::Relation(Relation {
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32()?;
            r.expect(b'N')?;
            Message::Insert {
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let (old, new) = match r.u8()? {
                b'K' | b'O' => {
                    let old = r.tuple()?;
                    r.expect(b'N')?;
                    (Some(old), r.tuple()?)
                }
                b'N' => (None, r.tuple()?),
                other => return Err(r.unexpected("K, O or N", other)),
            };
            Message::Update { relation, old, new }
        }
        b'D' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => {}
                other => return Err(r.unexpected("K or O", other)),
            }
            Message::Delete {
                relation,
                old: r.tuple()?,
            }
        }
        b'T' => {
            let count = r.u32()?;
            let _options = r.u8()?;
            let relations = (0..count).map(|_| r.u32()).collect::<Result<_, _>>()?;
            Message::Truncate { relations }
        }
        other => Message::Other(other),
    };
    Ok(message)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            DecodeError(format!(
                "{} bytes needed at offset {} of {}",
                n,
                self.at,
                self.bytes.len()
            ))
        })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let rest = &self.bytes[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| DecodeError(format!("unterminated string at offset {}", self.at)))?;
        let text = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.at += len + 1;
        Ok(text)
    }

    fn expect(&mut self, want: u8) -> Result<(), DecodeError> {
        match self.u8()? {
            got if got == want => Ok(()),
            got => Err(self.unexpected(&(want as char).to_string(), got)),
        }
    }

    fn unexpected(&self, want: &str, got: u8) -> DecodeError {
        DecodeError(format!(
            "expected {want} at offset {}, got {:?}",
            self.at - 1,
            got as char
        ))
    }

    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let count = self.u16()?;
        (0..count)
            .map(|_| match self.u8()? {
                b'n' => Ok(Value::Null),
                b'u' => Ok(Value::Unchanged),
                b't' | b'b' => {
                    let len = self.u32()? as usize;
                    Ok(Value::Text(
                        String::from_utf8_lossy(self.take(len)?).into_owned(),
                    ))
                }
                other => Err(self.unexpected("n, u, t or b", other)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn tuple(out: &mut Vec<u8>, values: &[Option<&str>]) {
        out.extend_from_slice(&(values.len() as u16).to_be_bytes());
        for v in values {
            match v {
                None => out.push(b'n'),
                Some(text) => {
                    out.push(b't');
                    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                    out.extend_from_slice(text.as_bytes());
                }
            }
        }
    }

    #[test]
    fn relations_and_changes_decode() {
        let mut relation = vec![b'R'];
        relation.extend_from_slice(&16_384u32.to_be_bytes());
        string(&mut relation, "shop");
        string(&mut relation, "items");
        relation.push(b'd');
        relation.extend_from_slice(&2u16.to_be_bytes());
        for (flags, name) in [(1u8, "sku"), (0, "title")] {
            relation.push(flags);
            string(&mut relation, name);
            relation.extend_from_slice(&25u32.to_be_bytes());
            relation.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        assert_eq!(
            decode(&relation).unwrap(),
            Message::Relation(Relation {
                oid: 16_384,
                namespace: "shop".into(),
                name: "items".into(),
                replica_identity: b'd',
                columns: vec![
                    Column {
                        name: "sku".into(),
                        key: true
                    },
                    Column {
                        name: "title".into(),
                        key: false
                    },
                ],
            })
        );

        let mut update = vec![b'U'];
        update.extend_from_slice(&16_384u32.to_be_bytes());
        update.push(b'K');
        tuple(&mut update, &[Some("old-sku"), None]);
        update.push(b'N');
        tuple(&mut update, &[Some("new-sku"), Some("Mug")]);
        assert_eq!(
            decode(&update).unwrap(),
            Message::Update {
                relation: 16_384,
                old: Some(vec![Value::Text("old-sku".into()), Value::Null]),
                new: vec![Value::Text("new-sku".into()), Value::Text("Mug".into())],
            }
        );

        let mut commit = vec![b'C', 0];
        commit.extend_from_slice(&10u64.to_be_bytes());
        commit.extend_from_slice(&20u64.to_be_bytes());
        commit.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(
            decode(&commit).unwrap(),
            Message::Commit {
                commit_lsn: 10,
                end_lsn: 20
            }
        );
        assert_eq!(
            decode(b"B").unwrap_err().0,
            "8 bytes needed at offset 1 of 1"
        );
        assert_eq!(decode(b"O").unwrap(), Message::Other(b'O'));
        assert!(decode(&update[..update.len() - 2]).is_err());
    }
}
