//! The architecture as data: each pathway is a list of area specifications, and the latent and
//! discriminator heads are areas too. A specification is checked (every area's input and output
//! shape) before any synapse is drawn, and [`Architecture::init`] builds the cortex from it.
//!
//! ```text
//! conv            [C, S, S] → [c, ⌊(S + 2p − k)/s⌋ + 1, …]          weight [c, C, k, k]
//! conv_transpose  [C, S, S] → [c, (S − 1)·s − 2p + k, …]            weight [C, c, k, k]
//! dense           [C, S, S] → [c, T, T]   (S = 1 or T = 1)           weight [c, C, S, S] (T = 1)
//!                                                                    or [C, c, T, T] (S = 1)
//! feedforward: images [channels, side, side] → trunk → latent head [nz, 1, 1]
//!                                                    → discriminator head [1, 1, 1]
//! feedback:    z [nz, 1, 1] → … → images [channels, side, side]
//! ```
//!
//! A dense area connects every input unit to every output unit (`nn.Linear` on the flattened
//! input; `T = side` unflattens its output into `c` maps of `T × T`). It runs on the
//! convolution kernels: a convolution whose kernel covers its whole `S × S` input, or, from a
//! `1 × 1` input, a transposed convolution whose kernel is the whole `T × T` output. Its biases
//! are drawn from `U(±1/√(C·S²))`, `nn.Linear`'s bound.
//!
//! PAD equivalent: [`Architecture::pad`] is the reference's `Encoder` (`conv1..conv3`,
//! `latent`, `dis`) and `Generator` (`tconv1..tconv4`) with `ndf = ngf = nf`, layer for layer
//! and in the same initialisation order.

use super::area::{Connectivity, CorticalArea};
use super::{Cortex, Discriminator, FeedbackPathway, FeedforwardPathway, Pathway};
use crate::kernels::{Activation, ConvGeometry};
use ndarray_rand::rand::Rng;
use std::fmt;

/// How an area is wired to the area below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaKind {
    /// Convolution: a `kernel × kernel` receptive field every `stride` units.
    Conv,
    /// Transposed convolution: each input unit projects onto a `kernel × kernel` field.
    ConvTranspose,
    /// Fully connected.
    Dense,
}

impl fmt::Display for AreaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AreaKind::Conv => "conv",
            AreaKind::ConvTranspose => "conv_transpose",
            AreaKind::Dense => "dense",
        })
    }
}

/// One area of a pathway, as written in `[[model.feedforward]]` or `[[model.feedback]]`.
///
/// ```toml
/// [[model.feedforward]]
/// name = "conv1"          # parameters E.conv1.weight, E.conv1.bias; plasticity.areas key "E.conv1"
/// region = "V1"
/// kind = "conv"           # conv | conv_transpose | dense
/// channels = 64           # output maps (dense: maps of side × side units)
/// kernel = 4              # conv kinds only
/// stride = 2              # conv kinds only (default 1)
/// padding = 1             # conv kinds only (default 0)
/// activation = { leaky_relu = 0.2 }   # or "identity", "tanh", "sigmoid" (default LeakyReLU 0.2)
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaSpec {
    /// The area's name within its pathway (`conv1`, `latent`, ...).
    pub name: String,
    /// The cortical region it stands for (`V1`, `IT`, ...); free text for reports.
    #[serde(default)]
    pub region: String,
    /// Convolution, transposed convolution or dense.
    pub kind: AreaKind,
    /// Output maps (a dense area's units are `channels × side × side`). May be left out on
    /// the feedback pathway's last area only: the images' channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Kernel side (conv kinds).
    #[serde(default)]
    pub kernel: usize,
    /// Stride (conv kinds).
    #[serde(default = "one")]
    pub stride: usize,
    /// Zero padding on every side (conv kinds).
    #[serde(default)]
    pub padding: usize,
    /// A dense area's output side: its units form `channels` maps of `side × side`.
    #[serde(default = "one")]
    pub side: usize,
    /// Transfer function.
    #[serde(default = "leaky_relu")]
    pub activation: Activation,
}

fn one() -> usize {
    1
}

fn leaky_relu() -> Activation {
    Activation::LeakyRelu(PAD_LEAK)
}

/// PAD's LeakyReLU slope.
pub const PAD_LEAK: f64 = 0.2;

impl AreaSpec {
    fn new(name: &str, kind: AreaKind, channels: usize) -> Self {
        AreaSpec {
            name: name.to_string(),
            region: String::new(),
            kind,
            channels: Some(channels),
            kernel: 0,
            stride: 1,
            padding: 0,
            side: 1,
            activation: leaky_relu(),
        }
    }

    /// A convolutional area of `channels` maps (LeakyReLU 0.2 unless changed).
    pub fn conv(name: &str, channels: usize, kernel: usize, stride: usize, padding: usize) -> Self {
        AreaSpec {
            kernel,
            stride,
            padding,
            ..AreaSpec::new(name, AreaKind::Conv, channels)
        }
    }

    /// A transposed-convolutional area of `channels` maps (LeakyReLU 0.2 unless changed).
    pub fn conv_transpose(
        name: &str,
        channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Self {
        AreaSpec {
            kernel,
            stride,
            padding,
            ..AreaSpec::new(name, AreaKind::ConvTranspose, channels)
        }
    }

    /// A dense area of `units` units (LeakyReLU 0.2 unless changed); see
    /// [`AreaSpec::side`] to unflatten its output into maps.
    pub fn dense(name: &str, units: usize) -> Self {
        AreaSpec::new(name, AreaKind::Dense, units)
    }

    /// The same area standing for `region`.
    pub fn region(mut self, region: &str) -> Self {
        self.region = region.to_string();
        self
    }

    /// The same area with transfer function `activation`.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// The same dense area with its output unflattened into `channels` maps of
    /// `side × side` (for a feedback pathway that starts dense and goes on convolutional).
    pub fn side(mut self, side: usize) -> Self {
        self.side = side;
        self
    }

    /// The same area with its output maps left to the images' channels (the feedback
    /// pathway's last area).
    pub fn image_channels(mut self) -> Self {
        self.channels = None;
        self
    }
}

/// Where an area sits: the pathway's prefix in parameter names, and its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An area of the feedforward trunk (`E.`).
    Trunk,
    /// The latent head (`E.`).
    Latent,
    /// The discriminator head (`E.`).
    Discriminator,
    /// An area of the feedback pathway (`G.`).
    Feedback,
}

impl Role {
    /// The pathway prefix of the area's full name.
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Feedback => "G",
            _ => "E",
        }
    }
}

/// A map's shape: channels and a square side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapShape {
    /// Channels (maps).
    pub channels: usize,
    /// Height = width.
    pub side: usize,
}

impl fmt::Display for MapShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.side, self.side)
    }
}

/// One area of a checked architecture: where it sits, what it reads and makes, and the
/// synapses that do it.
#[derive(Clone, Debug, PartialEq)]
pub struct AreaLayout {
    /// The area's specification.
    pub spec: AreaSpec,
    /// Its pathway and role.
    pub role: Role,
    /// `E.<name>` or `G.<name>`.
    pub full_name: String,
    /// What it reads.
    pub input: MapShape,
    /// What it makes.
    pub output: MapShape,
    /// The convolution that computes it.
    pub connectivity: Connectivity,
    /// Its geometry.
    pub geometry: ConvGeometry,
    /// Inputs per output unit (`nn.Linear` or `nn.Conv2d` / `nn.ConvTranspose2d` fan-in: sets
    /// the bias bound).
    pub fan_in: usize,
}

impl AreaLayout {
    /// Synapses plus biases.
    pub fn parameter_count(&self) -> usize {
        self.geometry.weight_len() + self.geometry.out_channels
    }
}

/// Why an architecture cannot be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ArchitectureError {
    /// An area cannot take the shape the area below gives it, or makes the wrong one.
    #[error("area {area} ({kind}): gets {gets}; {needs}")]
    Shape {
        /// Full name (`E.conv4`).
        area: String,
        /// Its kind.
        kind: AreaKind,
        /// The shape it receives, and from where.
        gets: String,
        /// What it needs (or what the pathway needs of it).
        needs: String,
    },
    /// A value of an area or of the input is unusable.
    #[error("{0}")]
    Invalid(String),
}

/// A network: the images it sees and each pathway's areas.
///
/// ```
/// use padsim::cortex::{Architecture, AreaSpec};
/// use padsim::kernels::Activation;
/// // A dense network for 28 × 28 grey images.
/// let arch = Architecture {
///     image_channels: 1,
///     image_side: 28,
///     feedforward: vec![AreaSpec::dense("fc1", 256).region("V1")],
///     latent: AreaSpec::dense("latent", 16).region("IT").activation(Activation::Identity),
///     discriminator: AreaSpec::dense("dis", 1).activation(Activation::Sigmoid),
///     feedback: vec![
///         AreaSpec::dense("fc1", 256),
///         AreaSpec::dense("out", 1).side(28).activation(Activation::Tanh).image_channels(),
///     ],
/// };
/// assert_eq!(arch.layout().unwrap().len(), 5);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    /// Image channels: 3 (colour) or 1 (grey); follows the data set in a run.
    pub image_channels: usize,
    /// Image height and width.
    pub image_side: usize,
    /// The feedforward trunk (encoder), input side first.
    pub feedforward: Vec<AreaSpec>,
    /// The latent head (IT): reads the trunk's last area, makes `[nz, 1, 1]`.
    pub latent: AreaSpec,
    /// The discriminator neurons: read the trunk's last area, make `[1, 1, 1]`.
    pub discriminator: AreaSpec,
    /// The feedback pathway (generator), latent side first: from `[nz, 1, 1]` to the images.
    pub feedback: Vec<AreaSpec>,
}

impl Default for Architecture {
    /// PAD's network: [`Architecture::pad`]`(64, 256)` for 3 × 32 × 32 images.
    fn default() -> Self {
        Architecture::pad(64, 256)
    }
}

impl Architecture {
    /// PAD's network for 3 × 32 × 32 images, V1 with `nf` maps (V2 2·nf, V4 4·nf) and a latent
    /// code of `nz`:
    ///
    /// ```text
    /// E: V1 conv 4/2/1 → V2 conv 4/2/1 → V4 conv 4/2/1 (LeakyReLU 0.2)
    ///    IT (latent) conv 4/2/0, identity;  discriminator conv 4/2/0, sigmoid (both read V4)
    /// G: tconv 4/1/0 → 4/2/1 → 4/2/1 (LeakyReLU 0.2) → 4/2/1 tanh
    /// ```
    pub fn pad(nf: usize, nz: usize) -> Self {
        let down = |name, region, c| AreaSpec::conv(name, c, 4, 2, 1).region(region);
        let head = |name, region, c, f| {
            AreaSpec::conv(name, c, 4, 2, 0)
                .region(region)
                .activation(f)
        };
        let up = |name, region, c| AreaSpec::conv_transpose(name, c, 4, 2, 1).region(region);
        Architecture {
            image_channels: 3,
            image_side: 32,
            feedforward: vec![
                down("conv1", "V1", nf),
                down("conv2", "V2", 2 * nf),
                down("conv3", "V4", 4 * nf),
            ],
            latent: head("latent", "IT", nz, Activation::Identity),
            discriminator: head("dis", "discriminator", 1, Activation::Sigmoid),
            feedback: vec![
                AreaSpec::conv_transpose("tconv1", 4 * nf, 4, 1, 0).region("V4 (feedback)"),
                up("tconv2", "V2 (feedback)", 2 * nf),
                up("tconv3", "V1 (feedback)", nf),
                up("tconv4", "retina (feedback)", 0)
                    .activation(Activation::Tanh)
                    .image_channels(),
            ],
        }
    }

    /// The same network for images of `channels` channels.
    pub fn with_image_channels(mut self, channels: usize) -> Self {
        self.image_channels = channels;
        self
    }

    /// The same network with every LeakyReLU's slope set to `leak`.
    pub fn with_leak(mut self, leak: f64) -> Self {
        for area in self.areas_mut() {
            if let Activation::LeakyRelu(slope) = &mut area.activation {
                *slope = leak;
            }
        }
        self
    }

    /// Every area's specification in initialisation order: trunk, latent, discriminator,
    /// feedback.
    pub fn areas(&self) -> impl Iterator<Item = (Role, &AreaSpec)> {
        let trunk = self.feedforward.iter().map(|a| (Role::Trunk, a));
        let feedback = self.feedback.iter().map(|a| (Role::Feedback, a));
        trunk
            .chain([
                (Role::Latent, &self.latent),
                (Role::Discriminator, &self.discriminator),
            ])
            .chain(feedback)
    }

    fn areas_mut(&mut self) -> impl Iterator<Item = &mut AreaSpec> {
        self.feedforward
            .iter_mut()
            .chain([&mut self.latent, &mut self.discriminator])
            .chain(self.feedback.iter_mut())
    }

    /// The latent code's size: the latent head's channels.
    pub fn nz(&self) -> usize {
        self.latent.channels.unwrap_or(0)
    }

    /// Checks every area and returns each one's input, output and synapses, in
    /// initialisation order; the first problem is an error naming the area, the shape it gets
    /// and the shape it needs.
    pub fn layout(&self) -> Result<Vec<AreaLayout>, ArchitectureError> {
        let invalid = |m: String| Err(ArchitectureError::Invalid(m));
        if self.image_channels == 0 || self.image_side == 0 {
            return invalid(format!(
                "the images must have at least one channel and one pixel, got {}×{}×{}",
                self.image_channels, self.image_side, self.image_side
            ));
        }
        if self.feedforward.is_empty() || self.feedback.is_empty() {
            return invalid(
                "both pathways need at least one area (model.feedforward and model.feedback)"
                    .into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (role, spec) in self.areas() {
            let full = format!("{}.{}", role.prefix(), spec.name);
            if spec.name.is_empty() || spec.name.contains(['.', '/', ' ']) {
                return invalid(format!(
                    "area name '{}' must be non-empty, without '.', '/' or spaces (it names parameters and HDF5 datasets)",
                    spec.name
                ));
            }
            if !names.insert(full.clone()) {
                return invalid(format!(
                    "two areas are named {full}: names must be unique within a pathway"
                ));
            }
        }
        let images = MapShape {
            channels: self.image_channels,
            side: self.image_side,
        };
        let mut out = Vec::new();
        let mut below = (images, "the images".to_string());
        for spec in &self.feedforward {
            let area = place(spec, Role::Trunk, below.0, &below.1, images)?;
            below = (area.output, area.full_name.clone());
            out.push(area);
        }
        let code = |channels| MapShape { channels, side: 1 };
        let heads = [
            (
                &self.latent,
                Role::Latent,
                "the latent head must make one code per image",
            ),
            (
                &self.discriminator,
                Role::Discriminator,
                "the discriminator head must make one unit per image",
            ),
        ];
        for (spec, role, why) in heads {
            let area = place(spec, role, below.0, &below.1, images)?;
            let wanted = match role {
                Role::Latent => code(area.output.channels),
                _ => code(1),
            };
            if area.output != wanted {
                return Err(shape_error(
                    &area,
                    &below.1,
                    format!(
                        "makes {}, but {why} ({wanted}): change its kernel, stride or padding, or make it dense",
                        area.output
                    ),
                ));
            }
            out.push(area);
        }
        let mut below = (code(self.nz()), "the latent code".to_string());
        for (i, spec) in self.feedback.iter().enumerate() {
            let area = place(spec, Role::Feedback, below.0, &below.1, images)?;
            if i + 1 == self.feedback.len() && area.output != images {
                return Err(shape_error(
                    &area,
                    &below.1,
                    format!(
                        "makes {}, but the feedback pathway must end at the images ({images})",
                        area.output
                    ),
                ));
            }
            below = (area.output, area.full_name.clone());
            out.push(area);
        }
        Ok(out)
    }

    /// A fresh cortex: every area's synapses drawn from `rng` in initialisation order (the
    /// trunk, the latent head, the discriminator head, then the feedback pathway; weight then
    /// bias). Panics with the [`Architecture::layout`] error if the architecture is not valid.
    pub fn init(&self, rng: &mut impl Rng) -> Cortex {
        let layout = self
            .layout()
            .unwrap_or_else(|e| panic!("invalid architecture: {e}"));
        let mut areas = layout.into_iter().map(|a| {
            let spec = &a.spec;
            CorticalArea::with_fan_in(
                a.role.prefix(),
                &spec.name,
                &spec.region,
                a.connectivity,
                a.geometry,
                spec.activation,
                a.fan_in,
                rng,
            )
        });
        let trunk = areas.by_ref().take(self.feedforward.len()).collect();
        let latent = areas.next().expect("a latent area");
        let discriminator = Discriminator {
            area: areas.next().expect("a discriminator area"),
        };
        let feedback = areas.collect();
        Cortex {
            feedforward: FeedforwardPathway {
                trunk: Pathway { areas: trunk },
                latent,
                discriminator,
            },
            feedback: FeedbackPathway {
                pathway: Pathway { areas: feedback },
            },
            architecture: self.clone(),
        }
    }

    /// One line per area: name, region, kind, input → output and parameters (for `padsim
    /// model` and logs). Errors as [`Architecture::layout`].
    pub fn describe(&self) -> Result<String, ArchitectureError> {
        let layout = self.layout()?;
        let width = layout.iter().map(|a| a.full_name.len()).max().unwrap_or(0);
        let mut text = String::new();
        let mut total = 0;
        for a in &layout {
            total += a.parameter_count();
            let detail = match a.spec.kind {
                AreaKind::Dense => String::new(),
                _ => format!(" {}/{}/{}", a.spec.kernel, a.spec.stride, a.spec.padding),
            };
            text += &format!(
                "{:width$}  {:18} {:<21} {:>9} → {:<9} {:>10} parameters\n",
                a.full_name,
                a.spec.region,
                format!("{}{detail}", a.spec.kind),
                a.input.to_string(),
                a.output.to_string(),
                a.parameter_count(),
            );
        }
        text += &format!("{total} parameters in all\n");
        Ok(text)
    }
}

fn shape_error(area: &AreaLayout, from: &str, needs: String) -> ArchitectureError {
    ArchitectureError::Shape {
        area: area.full_name.clone(),
        kind: area.spec.kind,
        gets: format!("{} from {from}", area.input),
        needs,
    }
}

/// Places `spec` on an input of shape `input` (made by `from`): its output, convolution and
/// fan-in, or the error saying what does not fit.
fn place(
    spec: &AreaSpec,
    role: Role,
    input: MapShape,
    from: &str,
    images: MapShape,
) -> Result<AreaLayout, ArchitectureError> {
    let full_name = format!("{}.{}", role.prefix(), spec.name);
    let fail = |needs: String| ArchitectureError::Shape {
        area: full_name.clone(),
        kind: spec.kind,
        gets: format!("{input} from {from}"),
        needs,
    };
    let channels = match spec.channels {
        Some(0) => {
            return Err(fail(
                "needs at least one output channel (channels = 0)".into(),
            ))
        }
        Some(c) => c,
        None if role == Role::Feedback => images.channels,
        None => return Err(fail(
            "needs `channels` (only the feedback pathway's last area may leave it to the images)"
                .into(),
        )),
    };
    let geometry = |kernel, stride, padding| ConvGeometry {
        in_channels: input.channels,
        out_channels: channels,
        kernel,
        stride,
        padding,
    };
    let (connectivity, geometry, side, fan_in) = match spec.kind {
        AreaKind::Conv | AreaKind::ConvTranspose => {
            if spec.kernel == 0 || spec.stride == 0 {
                return Err(fail(format!(
                    "needs a kernel and a stride of at least 1, got kernel {} stride {}",
                    spec.kernel, spec.stride
                )));
            }
            let g = geometry(spec.kernel, spec.stride, spec.padding);
            let (connectivity, side) = if spec.kind == AreaKind::Conv {
                let side = g
                    .conv_output(input.side)
                    .filter(|&s| s > 0)
                    .ok_or_else(|| {
                        fail(format!(
                            "its {k}×{k} kernel with padding {p} needs a map of at least {}×{}",
                            spec.kernel.saturating_sub(2 * spec.padding).max(1),
                            spec.kernel.saturating_sub(2 * spec.padding).max(1),
                            k = spec.kernel,
                            p = spec.padding
                        ))
                    })?;
                (Connectivity::Conv, side)
            } else {
                let side = g
                    .transpose_output(input.side)
                    .filter(|&s| s > 0)
                    .ok_or_else(|| {
                        fail(format!(
                            "its padding {} removes the whole {k}×{k} output of a {k}×{k} kernel",
                            spec.padding,
                            k = spec.kernel
                        ))
                    })?;
                (Connectivity::ConvTranspose, side)
            };
            (connectivity, g, side, connectivity.fan_in(&g))
        }
        AreaKind::Dense => {
            if spec.side == 0 {
                return Err(fail("a dense area needs side ≥ 1".into()));
            }
            let fan_in = input.channels * input.side * input.side;
            if spec.side == 1 {
                (Connectivity::Conv, geometry(input.side, 1, 0), 1, fan_in)
            } else if input.side == 1 {
                (
                    Connectivity::ConvTranspose,
                    geometry(spec.side, 1, 0),
                    spec.side,
                    fan_in,
                )
            } else {
                return Err(fail(format!(
                    "a dense area reads a 1×1 input or makes 1×1 maps, not {input} → {channels}×{s}×{s}: put a dense area with side = 1 before it",
                    s = spec.side
                )));
            }
        }
    };
    if role != Role::Feedback && spec.kind == AreaKind::Dense && spec.side != 1 {
        return Err(fail(
            "a feedforward dense area makes 1×1 units (side = 1)".into(),
        ));
    }
    Ok(AreaLayout {
        spec: spec.clone(),
        role,
        full_name: full_name.clone(),
        input,
        output: MapShape { channels, side },
        connectivity,
        geometry,
        fan_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pad_preset_has_pads_shapes() {
        let layout = Architecture::pad(64, 256).layout().unwrap();
        let shapes: Vec<String> = layout
            .iter()
            .map(|a| format!("{} {} {}", a.full_name, a.input, a.output))
            .collect();
        assert_eq!(
            shapes,
            [
                "E.conv1 3×32×32 64×16×16",
                "E.conv2 64×16×16 128×8×8",
                "E.conv3 128×8×8 256×4×4",
                "E.latent 256×4×4 256×1×1",
                "E.dis 256×4×4 1×1×1",
                "G.tconv1 256×1×1 256×4×4",
                "G.tconv2 256×4×4 128×8×8",
                "G.tconv3 128×8×8 64×16×16",
                "G.tconv4 64×16×16 3×32×32",
            ]
        );
        // The reference's fan-ins (bias bounds): conv in·k², ConvTranspose2d out·k².
        let fan_in: Vec<usize> = layout.iter().map(|a| a.fan_in).collect();
        assert_eq!(fan_in, [48, 1024, 2048, 4096, 4096, 4096, 2048, 1024, 48]);
    }

    #[test]
    fn a_mismatch_names_the_area_what_it_gets_and_what_it_needs() {
        let mut arch = Architecture::pad(8, 16);
        arch.image_side = 64;
        let err = arch.layout().unwrap_err().to_string();
        assert!(
            err.contains("E.latent") && err.contains("8×8") && err.contains("16×3×3"),
            "{err}"
        );
        assert!(err.contains("16×1×1"), "{err}");

        let mut arch = Architecture::pad(8, 16);
        arch.feedforward.push(AreaSpec::conv("conv4", 32, 4, 2, 1));
        arch.feedforward.push(AreaSpec::conv("conv5", 32, 4, 2, 0));
        let err = arch.layout().unwrap_err().to_string();
        assert!(
            err.contains("E.conv5") && err.contains("32×2×2 from E.conv4") && err.contains("4×4"),
            "{err}"
        );

        let mut arch = Architecture::pad(8, 16);
        arch.feedback.pop();
        let err = arch.layout().unwrap_err().to_string();
        assert!(err.contains("G.tconv3") && err.contains("3×32×32"), "{err}");
    }

    #[test]
    fn dense_areas_read_or_make_one_by_one_maps() {
        let arch = Architecture {
            image_channels: 1,
            image_side: 28,
            feedforward: vec![AreaSpec::dense("fc1", 64), AreaSpec::dense("fc2", 32)],
            latent: AreaSpec::dense("latent", 8).activation(Activation::Identity),
            discriminator: AreaSpec::dense("dis", 1).activation(Activation::Sigmoid),
            feedback: vec![
                AreaSpec::dense("fc1", 16).side(7),
                AreaSpec::conv_transpose("up", 0, 4, 4, 0)
                    .activation(Activation::Tanh)
                    .image_channels(),
            ],
        };
        let layout = arch.layout().unwrap();
        let fc1 = &layout[0];
        assert_eq!(
            (fc1.connectivity, fc1.geometry.kernel, fc1.fan_in),
            (Connectivity::Conv, 28, 784)
        );
        let g1 = &layout[4];
        assert_eq!(
            g1.output,
            MapShape {
                channels: 16,
                side: 7
            }
        );
        assert_eq!(
            (g1.connectivity, g1.fan_in),
            (Connectivity::ConvTranspose, 8)
        );
        assert_eq!(
            layout[5].output,
            MapShape {
                channels: 1,
                side: 28
            }
        );

        let mut bad = arch.clone();
        bad.feedback.insert(1, AreaSpec::dense("fc2", 2).side(2));
        let err = bad.layout().unwrap_err().to_string();
        assert!(
            err.contains("G.fc2") && err.contains("16×7×7 from G.fc1"),
            "{err}"
        );
    }

    #[test]
    fn names_must_be_unique_and_plain() {
        let mut arch = Architecture::pad(4, 8);
        arch.feedforward[1].name = "conv1".into();
        assert!(arch.layout().unwrap_err().to_string().contains("E.conv1"));
        let mut arch = Architecture::pad(4, 8);
        arch.feedback[0].name = "a.b".into();
        assert!(arch.layout().is_err());
    }

    #[test]
    fn leak_and_channels_follow_the_builders() {
        let arch = Architecture::pad(4, 8)
            .with_leak(0.1)
            .with_image_channels(1);
        assert_eq!(arch.feedforward[0].activation, Activation::LeakyRelu(0.1));
        assert_eq!(arch.latent.activation, Activation::Identity);
        assert_eq!(arch.layout().unwrap()[8].output.channels, 1);
        assert!(arch.describe().unwrap().contains("G.tconv4"));
    }
}
