//! An in-memory inverted index with BM25 over episodes' text (context text, notes and tags),
//! derived like the other indexes: it serves "episodes like this one" in microseconds, where
//! a round trip to SQLite's FTS5 would cost a blocking-pool hop per query. Free-text search
//! over stored text (`GET /memory/episodes?q=`) uses the store's FTS5 index.
//!
//! Must never: allocate per posting during a query (the accumulator is reused), or let a
//! term found in a large share of the documents drive the candidates (such terms still count
//! in each candidate's score).

// Numeric kernels index several arrays in step; a range loop says that most plainly.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "is", "it", "of", "on",
    "or", "the", "this", "to", "was", "with",
];

/// Lower-cased words of 2–32 characters, without stop words.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| (2..=32).contains(&w.chars().count()))
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
}

/// BM25 parameters.
const K1: f32 = 1.2;
const B: f32 = 0.75;

/// The index: documents are dense `u32` ids given by the caller.
#[derive(Debug, Default)]
pub struct TextIndex {
    terms: HashMap<String, u32>,
    words: Vec<String>,
    postings: Vec<Vec<(u32, u16)>>,
    doc_terms: Vec<Vec<(u32, u16)>>,
    doc_len: Vec<u16>,
    total_len: u64,
    docs: u32,
    acc: std::sync::Mutex<(Vec<f32>, Vec<u32>)>,
}

/// A scored document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The document.
    pub doc: u32,
    /// BM25.
    pub score: f32,
}

impl TextIndex {
    /// Sets the text of `doc` (replacing what it had).
    pub fn set(&mut self, doc: u32, text: &str) {
        let d = doc as usize;
        if d < self.doc_terms.len() && !self.doc_terms[d].is_empty() {
            self.remove(doc);
        }
        let mut counts: HashMap<u32, u16> = HashMap::new();
        let mut len = 0u32;
        for t in tokens(text) {
            let id = match self.terms.get(&t) {
                Some(&id) => id,
                None => {
                    let id = self.words.len() as u32;
                    self.terms.insert(t.clone(), id);
                    self.words.push(t);
                    self.postings.push(Vec::new());
                    id
                }
            };
            *counts.entry(id).or_default() += 1;
            len += 1;
        }
        if self.doc_terms.len() <= d {
            self.doc_terms.resize(d + 1, Vec::new());
            self.doc_len.resize(d + 1, 0);
        }
        let mut terms: Vec<(u32, u16)> = counts.into_iter().collect();
        terms.sort_unstable();
        for &(t, tf) in &terms {
            self.postings[t as usize].push((doc, tf));
        }
        self.doc_len[d] = len.min(u32::from(u16::MAX)) as u16;
        self.total_len += u64::from(self.doc_len[d]);
        self.docs += 1;
        self.doc_terms[d] = terms;
    }

    fn remove(&mut self, doc: u32) {
        let d = doc as usize;
        for &(t, _) in &self.doc_terms[d] {
            self.postings[t as usize].retain(|p| p.0 != doc);
        }
        self.total_len -= u64::from(self.doc_len[d]);
        self.docs = self.docs.saturating_sub(1);
        self.doc_terms[d].clear();
        self.doc_len[d] = 0;
    }

    fn idf(&self, t: u32) -> f32 {
        let n = self.docs.max(1) as f32;
        let df = self.postings[t as usize].len() as f32;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// The query terms of `text` known to the index, with their idf.
    pub fn query_terms(&self, text: &str) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = tokens(text)
            .filter_map(|t| self.terms.get(&t).copied())
            .map(|t| (t, self.idf(t)))
            .collect();
        out.sort_unstable_by_key(|x| x.0);
        out.dedup_by_key(|x| x.0);
        out
    }

    /// The terms of a stored document, with idf.
    pub fn doc_query(&self, doc: u32) -> Vec<(u32, f32)> {
        self.doc_terms
            .get(doc as usize)
            .map(|ts| ts.iter().map(|&(t, _)| (t, self.idf(t))).collect())
            .unwrap_or_default()
    }

    /// The word of a term id.
    pub fn word(&self, t: u32) -> Option<&str> {
        self.words.get(t as usize).map(String::as_str)
    }

    /// Terms `doc` shares with `query`.
    pub fn shared(&self, doc: u32, query: &[(u32, f32)]) -> Vec<u32> {
        let Some(ts) = self.doc_terms.get(doc as usize) else {
            return Vec::new();
        };
        query
            .iter()
            .filter(|(t, _)| ts.binary_search_by_key(t, |x| x.0).is_ok())
            .map(|(t, _)| *t)
            .collect()
    }

    /// BM25 of `doc` for `query`.
    pub fn score(&self, doc: u32, query: &[(u32, f32)]) -> f32 {
        let Some(ts) = self.doc_terms.get(doc as usize) else {
            return 0.0;
        };
        let avg = self.total_len as f32 / self.docs.max(1) as f32;
        let len = f32::from(self.doc_len[doc as usize]);
        query
            .iter()
            .filter_map(|(t, idf)| {
                ts.binary_search_by_key(t, |x| x.0).ok().map(|i| {
                    let tf = f32::from(ts[i].1);
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg.max(1.0)))
                })
            })
            .sum()
    }

    /// The best `k` documents for `query` among those `keep` lets through, using at most
    /// `max_terms` of the query's rarest terms (from 1,000 documents on, terms in more than a
    /// tenth of them are skipped: they bound the cost and carry little weight).
    pub fn top(
        &self,
        query: &[(u32, f32)],
        k: usize,
        max_terms: usize,
        keep: &dyn Fn(u32) -> bool,
    ) -> Vec<Scored> {
        let mut q: Vec<(u32, f32)> = query
            .iter()
            .copied()
            .filter(|(t, _)| {
                let df = self.postings[*t as usize].len();
                self.docs < 1000 || df * 10 <= self.docs as usize
            })
            .collect();
        q.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        q.truncate(max_terms);
        if q.is_empty() {
            return Vec::new();
        }
        let avg = self.total_len as f32 / self.docs.max(1) as f32;
        let mut guard = self.acc.lock().unwrap_or_else(|p| p.into_inner());
        let (acc, touched) = &mut *guard;
        if acc.len() < self.doc_len.len() {
            acc.resize(self.doc_len.len(), 0.0);
        }
        for &(t, idf) in &q {
            for &(doc, tf) in &self.postings[t as usize] {
                let d = doc as usize;
                if acc[d] == 0.0 {
                    touched.push(doc);
                }
                let tf = f32::from(tf);
                let len = f32::from(self.doc_len[d]);
                acc[d] += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg.max(1.0)));
            }
        }
        let mut top = crate::vector::TopK::new(k);
        for &doc in touched.iter() {
            let s = acc[doc as usize];
            acc[doc as usize] = 0.0;
            if keep(doc) {
                // The heap keeps the smallest "distance": use the negated score.
                top.push(crate::vector::Cand { d: -s, id: doc });
            }
        }
        touched.clear();
        top.into_sorted()
            .into_iter()
            .map(|c| Scored {
                doc: c.id,
                score: -c.d,
            })
            .collect()
    }

    /// Bytes held, roughly.
    pub fn bytes(&self) -> usize {
        self.postings
            .iter()
            .map(|p| 8 * p.capacity() + 24)
            .sum::<usize>()
            + self
                .doc_terms
                .iter()
                .map(|p| 8 * p.capacity() + 24)
                .sum::<usize>()
            + self.words.iter().map(|k| 2 * k.len() + 64).sum::<usize>()
            + 2 * self.doc_len.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_prefers_rare_shared_words() {
        let mut ix = TextIndex::default();
        ix.set(0, "the storm section with strobe lights");
        ix.set(1, "calm section with soft lights");
        ix.set(2, "calm section again");
        ix.set(3, "completely unrelated words");
        let q = ix.query_terms("strobe storm lights");
        let top = ix.top(&q, 3, 8, &|_| true);
        assert_eq!(top[0].doc, 0);
        assert!(top.iter().all(|s| s.doc != 3));
        ix.set(0, "now about something else");
        let top = ix.top(&q, 3, 8, &|_| true);
        assert!(top.iter().all(|s| s.doc != 0));
    }
}
