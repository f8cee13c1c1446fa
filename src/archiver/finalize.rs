//! Writing directory trees during the walk: a directory's tree is written
//! as soon as every file below it is stored, so the walk keeps in memory
//! only the directories whose files are still in the pipeline.

use super::pipeline::FileContent;
use super::walk::{Child, DirBuild, Walker};
use crate::error::Result;
use crate::snapshot::{Node, Tree};

impl Walker<'_> {
    /// Are all files below `dir` stored? Finalizes pending subdirectories
    /// on the way.
    fn ready(&mut self, dir: &mut DirBuild) -> Result<bool> {
        let mut ready = true;
        for child in dir.children.iter_mut() {
            match child {
                Child::Dir(_) => {
                    let Child::Dir(sub) =
                        std::mem::replace(child, Child::Other(Node::default_dir()))
                    else {
                        continue;
                    };
                    match self.finalize(sub)? {
                        Ok(node) => *child = Child::Other(node),
                        Err(sub) => {
                            *child = Child::Dir(sub);
                            ready = false;
                        }
                    }
                }
                Child::File { job: Some(j), .. } => ready &= self.collector.ready(*j),
                _ => {}
            }
        }
        Ok(ready)
    }

    /// Writes `dir`'s tree if everything below it is stored; returns its node
    /// (with the subtree id), or the directory back if it must wait.
    pub(crate) fn finalize(
        &mut self,
        mut dir: Box<DirBuild>,
    ) -> Result<Result<Node, Box<DirBuild>>> {
        self.collector.poll();
        if !self.ready(&mut dir)? {
            return Ok(Err(dir));
        }
        let DirBuild {
            mut node,
            parent,
            children,
        } = *dir;
        let mut nodes: Vec<Node> = Vec::with_capacity(children.len());
        for child in children {
            match child {
                Child::Other(n) => nodes.push(n),
                Child::File { mut node, job } => {
                    if let Some(job) = job {
                        let keep = self.shared_jobs.contains(&job);
                        match self.collector.take(job, keep) {
                            Some(FileContent::Stored { ids, bytes }) => {
                                node.content = Some(ids);
                                node.size = bytes;
                            }
                            Some(FileContent::Failed(msg)) => {
                                self.warnings.push(msg);
                                continue;
                            }
                            None => {
                                self.warnings.push(format!("{}: not read", node.name));
                                continue;
                            }
                        }
                    } else if node.content.is_none() {
                        node.content = Some(Vec::new());
                    }
                    self.summary.total_bytes_processed += node.size;
                    nodes.push(node);
                }
                // `ready` finalized every subdirectory.
                Child::Dir(_) => {}
            }
        }
        let id = self.shared.saver.save_tree(Tree { nodes })?;
        match parent.as_ref().filter(|p| p.is_dir()) {
            None => self.summary.dirs_new += 1,
            Some(p) if p.subtree == Some(id) => self.summary.dirs_unmodified += 1,
            Some(_) => self.summary.dirs_changed += 1,
        }
        node.subtree = Some(id);
        Ok(Ok(node))
    }
}
