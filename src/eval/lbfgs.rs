//! Limited-memory BFGS with a strong-Wolfe line search, for smooth unconstrained minimisation
//! in f64.
//!
//! ```text
//! x_{k+1} = x_k + α_k p_k,   p_k = −H_k ∇f(x_k)
//! H_k: the two-loop recursion over the last m pairs s_i = x_{i+1} − x_i, y_i = ∇f_{i+1} − ∇f_i,
//!      started from H⁰ = γ I, γ = sᵀy / yᵀy of the newest pair          (Nocedal & Wright, Alg. 7.4)
//! α_k: strong Wolfe, f(x + αp) ≤ f(x) + c₁ α ∇fᵀp  and  |∇f(x + αp)ᵀp| ≤ c₂ |∇fᵀp|,
//!      c₁ = 1e−4, c₂ = 0.9, by bracketing and cubic-interpolation zoom   (Alg. 3.5 and 3.6)
//! stop: ‖∇f‖_∞ < tolerance (converged), or max_iterations, or no step that decreases f
//! ```
//!
//! PAD equivalent: none. The paper's probe is plain SGD ([`super::probe`]); this minimiser
//! serves the converged logistic probe ([`super::logistic`]), the counterpart of
//! scikit-learn's `LogisticRegression(solver="lbfgs")`.
//!
//! Written here rather than taken from `argmin` or `linfa`: `argmin-math` supports ndarray up
//! to 0.16 only (this crate uses 0.17), `linfa-logistic` pins ndarray 0.16, and both bring a
//! large dependency tree for ~200 lines of well-known algorithm.

use std::collections::VecDeque;

/// Sufficient-decrease constant of the Armijo condition.
const ARMIJO: f64 = 1e-4;
/// Curvature constant of the strong Wolfe condition (0.9 is the usual choice for quasi-Newton).
const CURVATURE: f64 = 0.9;
/// Trial steps while looking for an interval that contains a Wolfe point.
const MAX_BRACKET_STEPS: usize = 20;
/// Trial steps while shrinking that interval.
const MAX_ZOOM_STEPS: usize = 30;

/// Settings of [`minimise`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsConfig {
    /// Number of curvature pairs remembered (the "m" of L-BFGS).
    pub memory: usize,
    /// Converged when the gradient's largest absolute component falls below this.
    pub gradient_tolerance: f64,
    /// Most iterations (accepted steps) before giving up.
    pub max_iterations: usize,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            memory: 10,
            gradient_tolerance: 1e-6,
            max_iterations: 1000,
        }
    }
}

/// Where [`minimise`] stopped, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimum {
    /// The last accepted point.
    pub x: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// The gradient there.
    pub gradient: Vec<f64>,
    /// `‖gradient‖_∞`.
    pub gradient_norm: f64,
    /// Accepted steps taken.
    pub iterations: usize,
    /// Objective evaluations, line searches included.
    pub evaluations: usize,
    /// Whether `gradient_norm < gradient_tolerance`. `false` after `max_iterations`, after a
    /// line search that found no decrease (typically: the objective's rounding error already
    /// exceeds the decrease still available), or on a non-finite objective at the start.
    pub converged: bool,
}

/// A point with its objective value and gradient.
#[derive(Clone)]
struct Point {
    x: Vec<f64>,
    value: f64,
    gradient: Vec<f64>,
}

/// A point on the search line `x + step·direction`, with the directional derivative there.
struct Trial {
    step: f64,
    slope: f64,
    point: Point,
}

/// Minimises `objective` from `start`.
///
/// `objective(x, gradient)` returns `f(x)` and writes `∇f(x)` into `gradient` (same length as
/// `x`). A non-finite return value is treated as "too far": the line search backs off.
pub fn minimise<F>(mut objective: F, start: Vec<f64>, config: &LbfgsConfig) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let mut evaluations = 0;
    let mut evaluate = |x: Vec<f64>| {
        let mut gradient = vec![0.0; x.len()];
        let value = objective(&x, &mut gradient);
        evaluations += 1;
        Point { x, value, gradient }
    };
    let mut current = evaluate(start);
    let mut history: VecDeque<CurvaturePair> = VecDeque::with_capacity(config.memory);
    let mut iterations = 0;
    let converged = loop {
        let gradient_norm = infinity_norm(&current.gradient);
        if !current.value.is_finite() || !gradient_norm.is_finite() {
            break false;
        }
        if gradient_norm < config.gradient_tolerance {
            break true;
        }
        if iterations >= config.max_iterations {
            break false;
        }
        let mut direction = two_loop_direction(&current.gradient, &history);
        let mut slope = dot(&direction, &current.gradient);
        let descends = slope < 0.0; // false for NaN too
        if !descends {
            // Not a descent direction (can only come from rounding in the recursion): forget
            // the curvature estimate and fall back to steepest descent.
            history.clear();
            direction = current.gradient.iter().map(|g| -g).collect();
            slope = -dot(&current.gradient, &current.gradient);
        }
        // Without curvature information the step length is unknown: start from a step whose
        // length is at most 1, as scipy and liblbfgs do. With it, the quasi-Newton step
        // (α = 1) is already scaled.
        let initial_step = if history.is_empty() {
            (1.0 / slope.abs().sqrt()).min(1.0)
        } else {
            1.0
        };
        match strong_wolfe_search(&mut evaluate, &current, &direction, slope, initial_step) {
            Some(next) => {
                let pair = CurvaturePair::new(&current, &next);
                // sᵀy > 0 keeps the inverse-Hessian estimate positive definite; the Wolfe
                // conditions guarantee it in exact arithmetic, rounding may not.
                if let Some(pair) = pair {
                    if history.len() == config.memory {
                        history.pop_front();
                    }
                    if config.memory > 0 {
                        history.push_back(pair);
                    }
                }
                current = next;
                iterations += 1;
            }
            None if !history.is_empty() => history.clear(),
            None => break false,
        }
    };
    let gradient_norm = infinity_norm(&current.gradient);
    Minimum {
        x: current.x,
        value: current.value,
        gradient: current.gradient,
        gradient_norm,
        iterations,
        evaluations,
        converged,
    }
}

/// One remembered step `s`, gradient change `y` and `ρ = 1 / sᵀy`.
struct CurvaturePair {
    s: Vec<f64>,
    y: Vec<f64>,
    rho: f64,
}

impl CurvaturePair {
    fn new(from: &Point, to: &Point) -> Option<Self> {
        let s: Vec<f64> = to.x.iter().zip(&from.x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = to
            .gradient
            .iter()
            .zip(&from.gradient)
            .map(|(a, b)| a - b)
            .collect();
        let sy = dot(&s, &y);
        (sy > f64::EPSILON * dot(&y, &y) && sy.is_finite()).then(|| CurvaturePair {
            s,
            y,
            rho: 1.0 / sy,
        })
    }
}

/// `−H ∇f` by the two-loop recursion (Nocedal & Wright, Algorithm 7.4).
fn two_loop_direction(gradient: &[f64], history: &VecDeque<CurvaturePair>) -> Vec<f64> {
    let mut q = gradient.to_vec();
    let mut alphas = Vec::with_capacity(history.len());
    for pair in history.iter().rev() {
        let alpha = pair.rho * dot(&pair.s, &q);
        axpy(-alpha, &pair.y, &mut q);
        alphas.push(alpha);
    }
    if let Some(newest) = history.back() {
        let gamma = 1.0 / (newest.rho * dot(&newest.y, &newest.y));
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for (pair, alpha) in history.iter().zip(alphas.iter().rev()) {
        let beta = pair.rho * dot(&pair.y, &q);
        axpy(alpha - beta, &pair.s, &mut q);
    }
    q.iter_mut().for_each(|v| *v = -*v);
    q
}

/// A step along `direction` satisfying the strong Wolfe conditions (Nocedal & Wright,
/// Algorithm 3.5), or failing that the best step found that satisfies the Armijo condition;
/// `None` if no step decreased the objective.
fn strong_wolfe_search(
    evaluate: &mut impl FnMut(Vec<f64>) -> Point,
    start: &Point,
    direction: &[f64],
    slope0: f64,
    initial_step: f64,
) -> Option<Point> {
    let f0 = start.value;
    let mut trial_at = |step: f64| {
        let x = start
            .x
            .iter()
            .zip(direction)
            .map(|(x, d)| x + step * d)
            .collect();
        let point = evaluate(x);
        Trial {
            step,
            slope: dot(&point.gradient, direction),
            point,
        }
    };
    let armijo_fails = |t: &Trial| !sufficient_decrease(t, f0, slope0);
    let curvature_holds = |t: &Trial| t.slope.abs() <= -CURVATURE * slope0;

    let mut previous = Trial {
        step: 0.0,
        slope: slope0,
        point: start.clone(),
    };
    let mut step = initial_step;
    for i in 0..MAX_BRACKET_STEPS {
        let trial = trial_at(step);
        if armijo_fails(&trial) || (i > 0 && trial.point.value >= previous.point.value) {
            return zoom(&mut trial_at, previous, trial, f0, slope0);
        }
        if curvature_holds(&trial) {
            return Some(trial.point);
        }
        if trial.slope >= 0.0 {
            return zoom(&mut trial_at, trial, previous, f0, slope0);
        }
        // Still descending steeply: the minimum along the line lies further out.
        step *= 2.0;
        previous = trial;
    }
    (previous.step > 0.0).then_some(previous.point)
}

/// Shrinks the interval between `low` (the best Armijo point so far; step 0 at first) and
/// `high` until a strong Wolfe point is found (Nocedal & Wright, Algorithm 3.6).
fn zoom(
    trial_at: &mut impl FnMut(f64) -> Trial,
    mut low: Trial,
    mut high: Trial,
    f0: f64,
    slope0: f64,
) -> Option<Point> {
    for _ in 0..MAX_ZOOM_STEPS {
        let width = (high.step - low.step).abs();
        if width <= f64::EPSILON * low.step.abs().max(high.step.abs()) {
            break;
        }
        let trial = trial_at(interpolate(&low, &high));
        if !sufficient_decrease(&trial, f0, slope0) || trial.point.value >= low.point.value {
            high = trial;
        } else {
            if trial.slope.abs() <= -CURVATURE * slope0 {
                return Some(trial.point);
            }
            if trial.slope * (high.step - low.step) >= 0.0 {
                high = std::mem::replace(&mut low, trial);
            } else {
                low = trial;
            }
        }
    }
    (low.step > 0.0).then_some(low.point)
}

/// The Armijo condition `f(x + αp) ≤ f(x) + c₁ α ∇fᵀp`; false for a NaN or infinite value.
fn sufficient_decrease(trial: &Trial, f0: f64, slope0: f64) -> bool {
    trial.point.value <= f0 + ARMIJO * trial.step * slope0
}

/// The minimiser of the cubic through both ends' values and slopes (Nocedal & Wright, eq.
/// 3.59), kept at least 10% of the interval away from either end; bisection when the cubic has
/// no usable minimiser (e.g. a non-finite end).
fn interpolate(a: &Trial, b: &Trial) -> f64 {
    let (lo, hi) = (a.step.min(b.step), a.step.max(b.step));
    let margin = 0.1 * (hi - lo);
    let d1 = a.slope + b.slope - 3.0 * (a.point.value - b.point.value) / (a.step - b.step);
    let discriminant = d1 * d1 - a.slope * b.slope;
    let cubic = if discriminant >= 0.0 {
        let d2 = (b.step - a.step).signum() * discriminant.sqrt();
        b.step - (b.step - a.step) * (b.slope + d2 - d1) / (b.slope - a.slope + 2.0 * d2)
    } else {
        f64::NAN
    };
    if cubic.is_finite() && cubic >= lo + margin && cubic <= hi - margin {
        cubic
    } else {
        0.5 * (lo + hi)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
}

/// `max_i |v_i|` (NaN if any component is NaN, so a broken gradient never looks converged).
fn infinity_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, &x| {
        if x.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(x.abs())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rosenbrock valley: curved, badly scaled, the classic test of a line search.
    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let config = LbfgsConfig {
            gradient_tolerance: 1e-9,
            ..LbfgsConfig::default()
        };
        let min = minimise(rosenbrock, vec![-1.2, 1.0], &config);
        assert!(min.converged, "{min:?}");
        assert!((min.x[0] - 1.0).abs() < 1e-8 && (min.x[1] - 1.0).abs() < 1e-8);
        assert!(min.iterations < 100, "{} iterations", min.iterations);
    }

    #[test]
    fn starting_at_the_minimum_takes_no_step() {
        let min = minimise(rosenbrock, vec![1.0, 1.0], &LbfgsConfig::default());
        assert!(min.converged);
        assert_eq!((min.iterations, min.evaluations), (0, 1));
    }

    #[test]
    fn max_iterations_stops_unconverged() {
        let config = LbfgsConfig {
            max_iterations: 3,
            ..LbfgsConfig::default()
        };
        let min = minimise(rosenbrock, vec![-1.2, 1.0], &config);
        assert!(!min.converged);
        assert_eq!(min.iterations, 3);
    }

    #[test]
    fn objective_without_minimum_along_steepest_descent_reports_failure_not_a_hang() {
        // f is linear and unbounded below: bracketing doubles the step 20 times, accepts the
        // last one each iteration; the run must end by max_iterations, unconverged.
        let config = LbfgsConfig {
            max_iterations: 5,
            ..LbfgsConfig::default()
        };
        let min = minimise(
            |x, g| {
                g[0] = 1.0;
                x[0]
            },
            vec![0.0],
            &config,
        );
        assert!(!min.converged);
        assert!(min.value < 0.0);
    }

    #[test]
    fn infinity_norm_propagates_nan() {
        assert!(infinity_norm(&[1.0, f64::NAN, 2.0]).is_nan());
        assert_eq!(infinity_norm(&[1.0, -3.0, 2.0]), 3.0);
    }
}
