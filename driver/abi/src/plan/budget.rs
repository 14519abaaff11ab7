// SPDX-License-Identifier: MIT OR Apache-2.0
//! The device-wide page budget: [`check_budget`].

use super::PlanError;

/// Admits `pages` more pages when `allocated` are held device-wide against a budget of
/// `budget`; returns the new total.
///
/// # Errors
/// `ENOSPC` past the budget (or on overflow).
///
/// # Examples
/// ```
/// use pktmap_abi::plan::{check_budget, PlanError};
/// assert_eq!(check_budget(10, 6, 16), Ok(16));
/// assert_eq!(check_budget(10, 7, 16), Err(PlanError::OverBudget));
/// ```
pub const fn check_budget(allocated: u64, pages: u64, budget: u64) -> Result<u64, PlanError> {
    match allocated.checked_add(pages) {
        Some(total) if total <= budget => Ok(total),
        _ => Err(PlanError::OverBudget),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::errno;

    #[test]
    fn budget() {
        assert_eq!(check_budget(0, 0, 0), Ok(0));
        assert_eq!(check_budget(0, 1, 0), Err(PlanError::OverBudget));
        assert_eq!(
            check_budget(u64::MAX, 1, u64::MAX),
            Err(PlanError::OverBudget)
        );
        assert_eq!(check_budget(5, 5, 10), Ok(10));
        assert_eq!(PlanError::OverBudget.errno(), errno::ENOSPC);
    }
}
