//! padsim: perturbed and adversarial dreaming (PAD; Deperrois, Petrovici, Senn & Jordan,
//! eLife 2022) as a library of cortical areas, plasticity rules and brain states.

pub mod kernels;
