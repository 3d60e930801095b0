//! Comparing one site's listing with the wanted nodes: adopt, notice failed or
//! vanished VMs, and find surplus VMs of this deployment to delete.

use std::collections::{BTreeMap, BTreeSet};

use super::events::EventKind;
use super::executor::Executor;
use super::journal::Record;
use super::start::OnStopped;
use super::state::BatchStatus;
use crate::model::{SiteId, Vm, VmId, VmState};
use crate::{ErrorClass, ErrorInfo, ErrorKind};

impl Executor<'_> {
    /// A listed VM of this deployment whose planned create has no intent in the
    /// journal (a journal cut short lost it after the call was made): journals the
    /// intent now, so the batch's VMs are adopted by the listing instead of being
    /// created twice or left unowned.
    fn adopt_lost_creates(&mut self, vms: &[Vm]) -> bool {
        let mut adopted = false;
        for vm in vms {
            if vm.deployment() != Some(self.st.plan.deployment_id.as_str()) {
                continue;
            }
            let Some(key) = vm.key() else { continue };
            if self.st.keys.contains(key) {
                continue;
            }
            let Some(bi) = self.st.batch_index(key) else {
                continue;
            };
            if self.st.batches[bi].status != BatchStatus::Planned {
                continue;
            }
            let batch = self.st.batches[bi].batch.clone();
            if self.record(Record::CreateIntent { batch }).is_ok() {
                adopted = true;
            }
        }
        adopted
    }

    /// Compares one listing with the wanted nodes; returns whether anything changed.
    pub(crate) fn observe(&mut self, site: &SiteId, vms: Vec<Vm>, idempotent: bool) -> bool {
        let mut changed = self.adopt_lost_creates(&vms);
        let cluster = self.st.plan.cluster.clone();
        let mut seen: BTreeMap<(String, u32), Vm> = BTreeMap::new();
        let mut surplus: BTreeSet<VmId> = BTreeSet::new();
        for vm in vms {
            if vm.cluster() != Some(cluster.as_str()) || !vm.state.is_alive() {
                continue;
            }
            let (Some(key), Some(index)) = (vm.key().map(str::to_owned), vm.index()) else {
                continue;
            };
            if !self.st.keys.contains(&key) {
                continue; // not made by this deployment: never touched
            }
            let owned = self
                .st
                .node_of(&key, index)
                .and_then(|n| self.st.nodes.get(n))
                .is_some_and(|n| &n.plan.site == site);
            if owned && !seen.contains_key(&(key.clone(), index)) {
                seen.insert((key, index), vm);
            } else {
                surplus.insert(vm.id);
            }
        }
        // Resolve batches whose outcome is unknown.
        for bi in 0..self.st.batches.len() {
            let b = &self.st.batches[bi];
            if &b.batch.site != site || b.status != BatchStatus::Unknown {
                continue;
            }
            let key = b.batch.key.to_string();
            let ids: Vec<Option<VmId>> = (0..b.batch.count())
                .map(|i| seen.get(&(key.clone(), i)).map(|v| v.id.clone()))
                .collect();
            if ids.iter().all(Option::is_some) {
                let _ = self.record(Record::CreateOutcome {
                    site: site.clone(),
                    key,
                    vm_ids: ids.into_iter().flatten().collect(),
                });
                changed = true;
            } else if idempotent {
                self.st.batches[bi].status = BatchStatus::Retry;
                changed = true;
            } else {
                // Without idempotent create a retry could duplicate: keep what exists,
                // recreate the missing nodes under a new key.
                self.st.batches[bi].status =
                    BatchStatus::Created(ids.iter().flatten().cloned().collect());
                let names = self.st.batches[bi].batch.nodes.clone();
                for (i, name) in names.iter().enumerate() {
                    if ids[i].is_none() {
                        if let Some(n) = self.st.nodes.get_mut(name) {
                            n.slot = None;
                        }
                    }
                }
                changed = true;
            }
        }
        let can_start = self
            .d
            .providers
            .get(site)
            .is_some_and(|p| p.capabilities().start_vm);
        // Update nodes of this site.
        let names: Vec<String> = self
            .st
            .nodes
            .iter()
            .filter(|(_, n)| &n.plan.site == site && n.slot.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for name in names {
            let Some((bi, index)) = self.st.nodes[&name].slot else {
                continue;
            };
            let key = self.st.batches[bi].batch.key.to_string();
            let created = matches!(self.st.batches[bi].status, BatchStatus::Created(_));
            let role = self.st.batches[bi].batch.role.clone();
            let max_attempts = self.d.options.max_node_attempts;
            let grace = if self.repairing {
                0
            } else {
                self.d.options.missing_grace_ticks
            };
            let repairing = self.repairing;
            let n = self.st.nodes.get_mut(&name).expect("listed above");
            match seen.remove(&(key, index)) {
                Some(vm) => {
                    n.missing_ticks = 0;
                    let state = vm.state.clone();
                    let id = vm.id.clone();
                    if n.vm.as_ref().map(|v| &v.state) != Some(&state) {
                        changed = true;
                    }
                    n.vm = Some(vm);
                    match state {
                        VmState::Running if !n.running_reported => {
                            n.running_reported = true;
                            self.d.events.emit(
                                Some(site),
                                Some(&role),
                                EventKind::VmRunning {
                                    node: name.clone(),
                                    vm_id: id,
                                },
                            );
                            if (repairing && n.rebuilt) || n.attempts > 0 {
                                self.d.events.emit(
                                    Some(site),
                                    Some(&role),
                                    EventKind::Repaired { node: name.clone() },
                                );
                            }
                        }
                        VmState::Stopped
                            if self.starts.on_stopped(
                                site,
                                &name,
                                &id,
                                can_start,
                                max_attempts,
                            ) == OnStopped::Start =>
                        {
                            // Same VM, disk and id: started at the next tick (start.rs).
                            n.running_reported = false;
                            changed = true;
                        }
                        VmState::Failed | VmState::Stopped => {
                            surplus.insert(id);
                            n.vm = None;
                            n.slot = None;
                            n.running_reported = false;
                            n.attempts += 1;
                            if n.attempts > max_attempts {
                                n.failed = Some(
                                    ErrorInfo::new(
                                        ErrorKind::Unavailable,
                                        format!(
                                            "its VM reached state {state} {} times",
                                            n.attempts
                                        ),
                                    )
                                    .with_class(ErrorClass::CloudRefused)
                                    .with_site(site.clone()),
                                );
                            } else {
                                self.actions.recreated.push(name.clone());
                            }
                            changed = true;
                        }
                        _ => {}
                    }
                }
                None if created => {
                    n.missing_ticks += 1;
                    if n.missing_ticks > grace {
                        // Its VM is gone (deleted by someone, lost by the site).
                        n.vm = None;
                        n.slot = None;
                        n.running_reported = false;
                        n.missing_ticks = 0;
                        n.attempts += 1;
                        if n.attempts > max_attempts {
                            n.failed = Some(
                                ErrorInfo::new(ErrorKind::NotFound, "its VM keeps disappearing")
                                    .with_site(site.clone()),
                            );
                        } else {
                            self.actions.recreated.push(name.clone());
                        }
                        changed = true;
                    }
                }
                None => {}
            }
        }
        // VMs of failed nodes are of no use either.
        for ((key, index), vm) in seen {
            let failed_owner = self
                .st
                .node_of(&key, index)
                .and_then(|n| self.st.nodes.get(n))
                .is_some_and(|n| n.failed.is_some());
            if failed_owner {
                surplus.insert(vm.id);
            }
        }
        let pending = self.pending_deletes.entry(site.clone()).or_default();
        pending.retain(|id| surplus.contains(id));
        pending.extend(surplus);
        changed
    }
}
