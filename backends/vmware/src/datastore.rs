//! The vSphere operations the store uses: finding the configured datacenters and datastores,
//! their free space, and the file manager's tasks (move, delete, make a folder) and the
//! datastore browser's listing, each task followed to its end.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use glint_store::StoreError;
use tokio::sync::Mutex;

use crate::config::{DatastoreSpec, VmwareConfig};
use crate::vim::{CallError, Fault, MoRef, ServiceContent, Vim};
use crate::xml::{escape, Node};

/// A configured datastore, found on the server.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) spec: DatastoreSpec,
    pub(crate) datacenter: MoRef,
    pub(crate) datastore: MoRef,
    pub(crate) browser: MoRef,
}

/// A file in a datastore folder.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    pub(crate) name: String,
    pub(crate) modified: SystemTime,
    pub(crate) folder: bool,
}

#[derive(Debug)]
pub(crate) struct Inventory {
    pub(crate) vim: Vim,
    store: String,
    specs: Vec<DatastoreSpec>,
    poll_interval: Duration,
    /// The configured datastores once found; forgotten when the server no longer knows a
    /// reference (a datastore registered again, a simulator restarted).
    targets: Mutex<Option<Arc<Vec<Target>>>>,
}

impl Inventory {
    pub(crate) fn new(config: &VmwareConfig, vim: Vim) -> Inventory {
        Inventory {
            vim,
            store: config.name.clone(),
            specs: config.datastores.clone(),
            poll_interval: config.task_poll_interval,
            targets: Mutex::new(None),
        }
    }

    fn error(&self, error: CallError) -> StoreError {
        error.into_store(&self.store)
    }

    fn misconfigured(&self, why: String) -> StoreError {
        StoreError::Misconfigured {
            store: self.store.clone(),
            why,
        }
    }

    /// The configured datastores, found on the server on first use.
    pub(crate) async fn targets(&self) -> Result<Arc<Vec<Target>>, StoreError> {
        let mut cached = self.targets.lock().await;
        if let Some(targets) = &*cached {
            return Ok(targets.clone());
        }
        let mut targets = Vec::new();
        for spec in &self.specs {
            targets.push(self.find(spec).await?);
        }
        let targets = Arc::new(targets);
        *cached = Some(targets.clone());
        Ok(targets)
    }

    async fn forget_targets(&self) {
        *self.targets.lock().await = None;
    }

    /// Runs `op` on the configured datastores, finding them again once if the server no
    /// longer knows a reference.
    pub(crate) async fn with_targets<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Arc<Vec<Target>>) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let targets = self.targets().await?;
        match op(targets).await {
            Err(CallError::Fault(fault)) if fault.is("ManagedObjectNotFound") => {
                self.forget_targets().await;
                let targets = self.targets().await?;
                op(targets).await.map_err(|e| self.error(e))
            }
            other => other.map_err(|e| self.error(e)),
        }
    }

    async fn find(&self, spec: &DatastoreSpec) -> Result<Target, StoreError> {
        let datacenter = self.datacenter(&spec.datacenter).await?;
        let listed = self
            .properties(std::slice::from_ref(&datacenter), &["datastore"])
            .await
            .map_err(|e| self.error(e))?;
        let references: Vec<MoRef> = listed
            .first()
            .and_then(|(_, props)| property(props, "datastore"))
            .map(|val| val.children.iter().filter_map(MoRef::from_node).collect())
            .unwrap_or_default();
        if !references.is_empty() {
            let named = self
                .properties(&references, &["name", "browser"])
                .await
                .map_err(|e| self.error(e))?;
            for (reference, props) in named {
                if property(&props, "name").map(|n| n.text.as_str()) == Some(&spec.datastore) {
                    let browser = property(&props, "browser")
                        .and_then(MoRef::from_node)
                        .ok_or_else(|| {
                            self.misconfigured(format!(
                                "datastore {} has no browser",
                                spec.datastore
                            ))
                        })?;
                    return Ok(Target {
                        spec: spec.clone(),
                        datacenter: datacenter.clone(),
                        datastore: reference,
                        browser,
                    });
                }
            }
        }
        Err(self.misconfigured(format!(
            "could not find datastore {} in datacenter {}",
            spec.datastore, spec.datacenter
        )))
    }

    /// The datacenter at inventory path `path`.
    pub(crate) async fn datacenter(&self, path: &str) -> Result<MoRef, StoreError> {
        let path = escape(path);
        let answer = self
            .vim
            .call(|c: &ServiceContent| {
                format!(
                    "<FindByInventoryPath xmlns=\"urn:vim25\">{}<inventoryPath>{path}</inventoryPath></FindByInventoryPath>",
                    c.search_index.xml("_this")
                )
            })
            .await
            .map_err(|e| self.error(e))?;
        answer
            .child("returnval")
            .and_then(MoRef::from_node)
            .filter(|r| r.kind == "Datacenter")
            .ok_or_else(|| self.misconfigured(format!("no datacenter at {path}")))
    }

    /// Free bytes of each target, in order.
    pub(crate) async fn free_space(&self, targets: &[Target]) -> Result<Vec<u64>, CallError> {
        let references: Vec<MoRef> = targets.iter().map(|t| t.datastore.clone()).collect();
        let found = self.properties(&references, &["summary.freeSpace"]).await?;
        Ok(references
            .iter()
            .map(|r| {
                found
                    .iter()
                    .find(|(o, _)| o == r)
                    .and_then(|(_, props)| property(props, "summary.freeSpace"))
                    .and_then(|v| v.text.trim().parse::<i64>().ok())
                    .map_or(0, |free| free.max(0).unsigned_abs())
            })
            .collect())
    }

    /// `RetrievePropertiesEx` of `paths` on `objects` (all of one type).
    async fn properties(
        &self,
        objects: &[MoRef],
        paths: &[&str],
    ) -> Result<Vec<(MoRef, Vec<(String, Node)>)>, CallError> {
        let Some(kind) = objects.first().map(|o| o.kind.clone()) else {
            return Ok(Vec::new());
        };
        let path_set: String = paths
            .iter()
            .map(|p| format!("<pathSet>{}</pathSet>", escape(p)))
            .collect();
        let object_set: String = objects
            .iter()
            .map(|o| format!("<objectSet>{}</objectSet>", o.xml("obj")))
            .collect();
        let answer = self
            .vim
            .call_expecting(
                |c: &ServiceContent| {
                    format!(
                        "<RetrievePropertiesEx xmlns=\"urn:vim25\">{}<specSet><propSet><type>{}</type>{path_set}</propSet>{object_set}</specSet><options/></RetrievePropertiesEx>",
                        c.property_collector.xml("_this"),
                        escape(&kind)
                    )
                },
                |answer| {
                    let found: Vec<&Node> = answer
                        .children_named("returnval")
                        .flat_map(|r| r.children_named("objects"))
                        .collect();
                    // A property the session could not read: `missingSet` with the fault.
                    let unauthenticated = found.iter().flat_map(|o| o.children_named("missingSet")).any(|m| {
                        m.path(&["fault", "fault"]).and_then(Node::xsi_type) == Some("NotAuthenticated")
                    });
                    found.len() >= objects.len() && !unauthenticated
                },
            )
            .await?;
        let mut out = Vec::new();
        for object in answer
            .children_named("returnval")
            .flat_map(|r| r.children_named("objects"))
        {
            let Some(reference) = object.child("obj").and_then(MoRef::from_node) else {
                continue;
            };
            let props = object
                .children_named("propSet")
                .filter_map(|p| Some((p.child("name")?.text.clone(), p.child("val")?.clone())))
                .collect();
            out.push((reference, props));
        }
        Ok(out)
    }

    /// Starts a file manager task and follows it to its end.
    async fn file_task(
        &self,
        operation: impl Fn(&ServiceContent) -> String,
    ) -> Result<Option<Node>, CallError> {
        let answer = self.vim.call(operation).await?;
        let task = answer
            .child("returnval")
            .and_then(MoRef::from_node)
            .ok_or_else(|| {
                CallError::Store(StoreError::Backend {
                    store: self.store.clone(),
                    source: "a task call answered no task".into(),
                })
            })?;
        self.wait(&task).await
    }

    /// Polls `task` until it ends: quickly at first (most datastore tasks take milliseconds),
    /// then every `vmware_task_poll_interval`. Its result, or its fault.
    async fn wait(&self, task: &MoRef) -> Result<Option<Node>, CallError> {
        let mut pause = Duration::from_millis(20);
        loop {
            let found = self
                .properties(std::slice::from_ref(task), &["info"])
                .await?;
            let info = found
                .first()
                .and_then(|(_, props)| property(props, "info"))
                .cloned()
                .unwrap_or_default();
            match info.text_at(&["state"]) {
                Some("success") => return Ok(info.child("result").cloned()),
                Some("error") => {
                    let error = info.child("error").cloned().unwrap_or_default();
                    return Err(CallError::Fault(Fault::from_node(&error)));
                }
                Some("queued" | "running") => {}
                other => {
                    return Err(CallError::Store(StoreError::Backend {
                        store: self.store.clone(),
                        source: format!("task {} in state {other:?}", task.value).into(),
                    }))
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.poll_interval);
        }
    }

    /// Deletes a file (`DeleteDatastoreFile_Task`).
    pub(crate) async fn delete_file(
        &self,
        datacenter: Option<&MoRef>,
        path: &str,
    ) -> Result<(), CallError> {
        let datacenter = datacenter.map(|d| d.xml("datacenter")).unwrap_or_default();
        let path = escape(path);
        self.file_task(|c: &ServiceContent| {
            format!(
                "<DeleteDatastoreFile_Task xmlns=\"urn:vim25\">{}<name>{path}</name>{datacenter}</DeleteDatastoreFile_Task>",
                c.file_manager.xml("_this")
            )
        })
        .await
        .map(drop)
    }

    /// Renames a file within a datacenter, never over an existing one (`FileAlreadyExists`).
    pub(crate) async fn move_file(
        &self,
        datacenter: &MoRef,
        from: &str,
        to: &str,
    ) -> Result<(), CallError> {
        let (from, to) = (escape(from), escape(to));
        let dc = |name: &str| datacenter.xml(name);
        self.file_task(|c: &ServiceContent| {
            format!(
                "<MoveDatastoreFile_Task xmlns=\"urn:vim25\">{}<sourceName>{from}</sourceName>{}<destinationName>{to}</destinationName>{}<force>false</force></MoveDatastoreFile_Task>",
                c.file_manager.xml("_this"),
                dc("sourceDatacenter"),
                dc("destinationDatacenter")
            )
        })
        .await
        .map(drop)
    }

    /// Makes a folder and its parents; one that exists already is fine.
    pub(crate) async fn make_directory(
        &self,
        datacenter: &MoRef,
        path: &str,
    ) -> Result<(), CallError> {
        let path = escape(path);
        let result = self
            .vim
            .call(|c: &ServiceContent| {
                format!(
                    "<MakeDirectory xmlns=\"urn:vim25\">{}<name>{path}</name>{}<createParentDirectories>true</createParentDirectories></MakeDirectory>",
                    c.file_manager.xml("_this"),
                    datacenter.xml("datacenter")
                )
            })
            .await;
        match result {
            Err(CallError::Fault(fault)) if fault.is("FileAlreadyExists") => Ok(()),
            other => other.map(drop),
        }
    }

    /// The files of folder `path` (`[datastore] folder`); none when it does not exist.
    pub(crate) async fn list(
        &self,
        target: &Target,
        path: &str,
    ) -> Result<Vec<FileEntry>, CallError> {
        let path = escape(path);
        let browser = target.browser.clone();
        let searched = self
            .file_task(|_: &ServiceContent| {
                format!(
                    "<SearchDatastore_Task xmlns=\"urn:vim25\">{}<datastorePath>{path}</datastorePath><searchSpec><details><fileType>true</fileType><fileSize>false</fileSize><modification>true</modification><fileOwner>false</fileOwner></details><matchPattern>*</matchPattern></searchSpec></SearchDatastore_Task>",
                    browser.xml("_this")
                )
            })
            .await;
        let result = match searched {
            Ok(result) => result.unwrap_or_default(),
            Err(CallError::Fault(fault)) if fault.is("FileNotFound") => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(result
            .children_named("file")
            .filter_map(|file| {
                let name = file.text_at(&["path"])?.to_owned();
                let modified = file
                    .text_at(&["modification"])
                    .and_then(|m| chrono::DateTime::parse_from_rfc3339(m.trim()).ok())
                    .map_or(SystemTime::UNIX_EPOCH, SystemTime::from);
                let folder = file.xsi_type() == Some("FolderFileInfo");
                Some(FileEntry {
                    name,
                    modified,
                    folder,
                })
            })
            .collect())
    }
}

fn property<'a>(props: &'a [(String, Node)], name: &str) -> Option<&'a Node> {
    props.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}
