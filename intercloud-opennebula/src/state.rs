//! OpenNebula's VM `STATE` × `LCM_STATE` mapped to core's [`VmState`]. Pure.
//!
//! Source: `include/VirtualMachine.h` (enums `VmState` and `LcmState`), same numbers in
//! pyone's enums. `LCM_STATE` only means something while `STATE` is 3 (ACTIVE).
//!
//! | STATE | LCM_STATE | core |
//! |---|---|---|
//! | 0 INIT, 1 PENDING, 10 CLONING | — | Pending |
//! | 2 HOLD | — | Stopped (held by someone; it waits for `release`) |
//! | 3 ACTIVE | 3 RUNNING | Running |
//! | 3 ACTIVE | 12 SHUTDOWN, 11 EPILOG, 23 CLEANUP_DELETE | Terminated (the path of `terminate`: being deleted) |
//! | 3 ACTIVE | 36–42, 44, 46–50, 61: the `*_FAILURE` states | Failed |
//! | 3 ACTIVE | 16 UNKNOWN | Unknown("UNKNOWN"): the host stopped reporting it |
//! | 3 ACTIVE | 13, 14, 55, 58 (retired), > 71 | Unknown |
//! | 3 ACTIVE | every other: LCM_INIT, PROLOG, BOOT, MIGRATE, HOTPLUG*, BACKUP, … | Pending |
//! | 4 STOPPED, 5 SUSPENDED, 8 POWEROFF, 9 UNDEPLOYED | — | Stopped |
//! | 6 DONE | — | Terminated |
//! | 7 FAILED, 11 CLONING_FAILURE | — | Failed |
//! | other | — | Unknown |
//!
//! Every transient LCM state is `Pending`, never an error: right after
//! `one.template.instantiate` a VM is PENDING, then ACTIVE/LCM_INIT, PROLOG, BOOT —
//! treating those as failures is the bug that breaks other tools under parallel
//! creation. The exceptions are the states of `terminate` itself, which core must
//! see as `Terminated` at once so a deleted VM is never listed as alive.

use intercloud_core::VmState;

/// `STATE` names, indexed by number (7 FAILED is reserved).
const STATES: [&str; 12] = [
    "INIT",
    "PENDING",
    "HOLD",
    "ACTIVE",
    "STOPPED",
    "SUSPENDED",
    "DONE",
    "FAILED",
    "POWEROFF",
    "UNDEPLOYED",
    "CLONING",
    "CLONING_FAILURE",
];

/// `LCM_STATE` names, indexed by number (`""` = retired number).
const LCM_STATES: [&str; 72] = [
    "LCM_INIT",
    "PROLOG",
    "BOOT",
    "RUNNING",
    "MIGRATE",
    "SAVE_STOP",
    "SAVE_SUSPEND",
    "SAVE_MIGRATE",
    "PROLOG_MIGRATE",
    "PROLOG_RESUME",
    "EPILOG_STOP",
    "EPILOG",
    "SHUTDOWN",
    "",
    "",
    "CLEANUP_RESUBMIT",
    "UNKNOWN",
    "HOTPLUG",
    "SHUTDOWN_POWEROFF",
    "BOOT_UNKNOWN",
    "BOOT_POWEROFF",
    "BOOT_SUSPENDED",
    "BOOT_STOPPED",
    "CLEANUP_DELETE",
    "HOTPLUG_SNAPSHOT",
    "HOTPLUG_NIC",
    "HOTPLUG_SAVEAS",
    "HOTPLUG_SAVEAS_POWEROFF",
    "HOTPLUG_SAVEAS_SUSPENDED",
    "SHUTDOWN_UNDEPLOY",
    "EPILOG_UNDEPLOY",
    "PROLOG_UNDEPLOY",
    "BOOT_UNDEPLOY",
    "HOTPLUG_PROLOG_POWEROFF",
    "HOTPLUG_EPILOG_POWEROFF",
    "BOOT_MIGRATE",
    "BOOT_FAILURE",
    "BOOT_MIGRATE_FAILURE",
    "PROLOG_MIGRATE_FAILURE",
    "PROLOG_FAILURE",
    "EPILOG_FAILURE",
    "EPILOG_STOP_FAILURE",
    "EPILOG_UNDEPLOY_FAILURE",
    "PROLOG_MIGRATE_POWEROFF",
    "PROLOG_MIGRATE_POWEROFF_FAILURE",
    "PROLOG_MIGRATE_SUSPEND",
    "PROLOG_MIGRATE_SUSPEND_FAILURE",
    "BOOT_UNDEPLOY_FAILURE",
    "BOOT_STOPPED_FAILURE",
    "PROLOG_RESUME_FAILURE",
    "PROLOG_UNDEPLOY_FAILURE",
    "DISK_SNAPSHOT_POWEROFF",
    "DISK_SNAPSHOT_REVERT_POWEROFF",
    "DISK_SNAPSHOT_DELETE_POWEROFF",
    "DISK_SNAPSHOT_SUSPENDED",
    "",
    "DISK_SNAPSHOT_DELETE_SUSPENDED",
    "DISK_SNAPSHOT",
    "",
    "DISK_SNAPSHOT_DELETE",
    "PROLOG_MIGRATE_UNKNOWN",
    "PROLOG_MIGRATE_UNKNOWN_FAILURE",
    "DISK_RESIZE",
    "DISK_RESIZE_POWEROFF",
    "DISK_RESIZE_UNDEPLOYED",
    "HOTPLUG_NIC_POWEROFF",
    "HOTPLUG_RESIZE",
    "HOTPLUG_SAVEAS_UNDEPLOYED",
    "HOTPLUG_SAVEAS_STOPPED",
    "BACKUP",
    "BACKUP_POWEROFF",
    "RESTORE",
];

/// The name of a `STATE` number, if OpenNebula defines it.
pub fn state_name(state: i64) -> Option<&'static str> {
    usize::try_from(state)
        .ok()
        .and_then(|i| STATES.get(i))
        .copied()
}

/// The name of an `LCM_STATE` number, if OpenNebula defines it (and has not retired it).
pub fn lcm_state_name(lcm: i64) -> Option<&'static str> {
    usize::try_from(lcm)
        .ok()
        .and_then(|i| LCM_STATES.get(i))
        .copied()
        .filter(|n| !n.is_empty())
}

/// Core's state for a VM's `STATE` and `LCM_STATE` (see the module table).
pub fn vm_state(state: i64, lcm: i64) -> VmState {
    match state {
        0 | 1 | 10 => VmState::Pending,
        2 | 4 | 5 | 8 | 9 => VmState::Stopped,
        3 => active(lcm),
        6 => VmState::Terminated,
        7 | 11 => VmState::Failed,
        other => VmState::Unknown(format!("STATE={other}")),
    }
}

fn active(lcm: i64) -> VmState {
    match lcm_state_name(lcm) {
        Some("RUNNING") => VmState::Running,
        Some("SHUTDOWN" | "EPILOG" | "CLEANUP_DELETE") => VmState::Terminated,
        Some("UNKNOWN") => VmState::Unknown("UNKNOWN".into()),
        Some(name) if name.ends_with("_FAILURE") => VmState::Failed,
        Some(_) => VmState::Pending,
        None => VmState::Unknown(format!("ACTIVE/LCM_STATE={lcm}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_path_is_pending_then_running() {
        assert_eq!(vm_state(0, 0), VmState::Pending);
        assert_eq!(vm_state(1, 0), VmState::Pending);
        for lcm in [0, 1, 2] {
            assert_eq!(vm_state(3, lcm), VmState::Pending, "LCM {lcm}");
        }
        assert_eq!(vm_state(3, 3), VmState::Running);
    }

    #[test]
    fn every_transient_lcm_state_is_pending_and_none_is_an_error() {
        let mut failures = 0;
        for lcm in 0..72 {
            let s = vm_state(3, lcm);
            match lcm_state_name(lcm) {
                None => assert!(matches!(s, VmState::Unknown(_)), "{lcm}"),
                Some(n) if n.ends_with("_FAILURE") => {
                    failures += 1;
                    assert_eq!(s, VmState::Failed, "{n}");
                }
                Some("RUNNING") => assert_eq!(s, VmState::Running),
                Some("SHUTDOWN" | "EPILOG" | "CLEANUP_DELETE") => {
                    assert_eq!(s, VmState::Terminated)
                }
                Some("UNKNOWN") => assert_eq!(s, VmState::Unknown("UNKNOWN".into())),
                Some(n) => assert_eq!(s, VmState::Pending, "{n} ({lcm}) is transient"),
            }
        }
        // 36-42, 44, 46-50, 61
        assert_eq!(failures, 14);
        assert_eq!(lcm_state_name(69), Some("BACKUP"));
        assert_eq!(lcm_state_name(71), Some("RESTORE"));
        assert_eq!(
            vm_state(3, 72),
            VmState::Unknown("ACTIVE/LCM_STATE=72".into())
        );
    }

    #[test]
    fn other_states() {
        assert_eq!(vm_state(2, 0), VmState::Stopped);
        for s in [4, 5, 8, 9] {
            assert_eq!(vm_state(s, 0), VmState::Stopped);
        }
        assert_eq!(vm_state(6, 0), VmState::Terminated);
        assert_eq!(vm_state(7, 0), VmState::Failed);
        assert_eq!(vm_state(10, 0), VmState::Pending);
        assert_eq!(vm_state(11, 0), VmState::Failed);
        assert_eq!(vm_state(12, 0), VmState::Unknown("STATE=12".into()));
        assert_eq!(vm_state(-1, 0), VmState::Unknown("STATE=-1".into()));
        assert_eq!(state_name(8), Some("POWEROFF"));
    }
}
