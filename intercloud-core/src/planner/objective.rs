//! What the planner minimises: money, communication time, or a weighted sum.

use serde::{Deserialize, Serialize};

/// The weight the secondary criterion gets in the pure objectives, so that among
/// plans equal on the primary criterion the better one on the other wins
/// (`money` breaks ties by time, `time` by money).
pub const TIE_BREAK_WEIGHT: f64 = 1e-6;

/// Which criterion the planner minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectiveKind {
    /// Money per job; communication time only breaks ties.
    Money,
    /// Communication time per job; money only breaks ties.
    Time,
    /// Money per job plus `lambda` × communication seconds per job.
    Balanced,
}

impl ObjectiveKind {
    /// The lowercase name used on the command line (`--objective money`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Money => "money",
            Self::Time => "time",
            Self::Balanced => "balanced",
        }
    }
}

impl std::str::FromStr for ObjectiveKind {
    type Err = crate::Error;

    /// `money`, `time` or `balanced` (the `--objective` values).
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "money" => Ok(Self::Money),
            "time" => Ok(Self::Time),
            "balanced" => Ok(Self::Balanced),
            other => Err(crate::Error::invalid(format!(
                "objective {other:?}: expected money, time or balanced"
            ))),
        }
    }
}

/// The planner's objective, with its units.
///
/// ```text
/// total = w_money × money_per_hour × job_hours + w_time × communication_s
/// money:    w_money = 1,                 w_time = 1e-6 money/s   (total in money)
/// time:     w_money = 1e-6 s/money,      w_time = 1              (total in seconds)
/// balanced: w_money = 1,                 w_time = lambda         (total in money)
/// ```
///
/// - `money_per_hour` is Σ count × `price_per_hour` over every group and site, in the
///   federation's currency unit;
/// - `job_hours` is how long one job keeps the cluster busy, in hours, so
///   `money_per_hour × job_hours` is the money one job costs;
/// - `communication_s` is the estimated communication time of one job in seconds (see
///   the [module documentation](crate::planner));
/// - `lambda` is what one second of communication is worth, in money units per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// Which criterion is minimised.
    pub kind: ObjectiveKind,
    /// Money units per second of communication (used by `balanced`).
    pub lambda: f64,
    /// Hours one job occupies the cluster; converts money per hour to money per job.
    pub job_hours: f64,
}

impl Default for Objective {
    /// `balanced` with `lambda` = 0.01 money/s (36 money units per hour of waiting)
    /// and one-hour jobs.
    fn default() -> Self {
        Self::balanced(0.01)
    }
}

impl Objective {
    /// Minimise money (ties broken by communication time); one-hour jobs.
    pub fn money() -> Self {
        Self {
            kind: ObjectiveKind::Money,
            lambda: 0.0,
            job_hours: 1.0,
        }
    }

    /// Minimise communication time (ties broken by money); one-hour jobs.
    pub fn time() -> Self {
        Self {
            kind: ObjectiveKind::Time,
            lambda: 0.0,
            job_hours: 1.0,
        }
    }

    /// Minimise money + `lambda` × communication seconds (`lambda` in money/s);
    /// one-hour jobs.
    pub fn balanced(lambda: f64) -> Self {
        Self {
            kind: ObjectiveKind::Balanced,
            lambda,
            job_hours: 1.0,
        }
    }

    /// The same objective with jobs of `hours` hours.
    pub fn with_job_hours(mut self, hours: f64) -> Self {
        self.job_hours = hours;
        self
    }

    /// `(w_money, w_time)`: the weights of money per hour and of communication
    /// seconds in the total (money per hour is already multiplied by `job_hours`).
    pub fn weights(&self) -> (f64, f64) {
        match self.kind {
            ObjectiveKind::Money => (self.job_hours, TIE_BREAK_WEIGHT),
            ObjectiveKind::Time => (TIE_BREAK_WEIGHT * self.job_hours, 1.0),
            ObjectiveKind::Balanced => (self.job_hours, self.lambda),
        }
    }

    /// The unit of `total`: `"money"` or `"s"`.
    pub fn unit(&self) -> &'static str {
        match self.kind {
            ObjectiveKind::Time => "s",
            _ => "money",
        }
    }

    /// Checks the figures.
    ///
    /// # Errors
    /// `InvalidRequest` when `lambda` is negative or `job_hours` is not positive.
    pub fn validate(&self) -> crate::Result<()> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(crate::Error::invalid(
                "objective: lambda must be a finite number >= 0 (money units per second)",
            ));
        }
        if !(self.job_hours.is_finite() && self.job_hours > 0.0) {
            return Err(crate::Error::invalid(
                "objective: job_hours must be a finite number > 0",
            ));
        }
        Ok(())
    }

    /// The formula of `total` for this objective, with its figures.
    pub fn formula(&self) -> String {
        match self.kind {
            ObjectiveKind::Money => format!(
                "total = money_per_hour × {} h + {:e} money/s × communication_s   [money; time breaks ties]",
                self.job_hours, TIE_BREAK_WEIGHT
            ),
            ObjectiveKind::Time => format!(
                "total = communication_s + {:e} s/money × money_per_hour × {} h   [seconds; money breaks ties]",
                TIE_BREAK_WEIGHT, self.job_hours
            ),
            ObjectiveKind::Balanced => format!(
                "total = money_per_hour × {} h + λ × communication_s, λ = {} money/s   [money]",
                self.job_hours, self.lambda
            ),
        }
    }
}
