//! Typed readings of scsynth's replies: `/status.reply`, `/g_queryTree.reply`, `/n_info`,
//! the `/n_set` that answers `/s_get`, and node notifications.
//!
//! Must never: panic on a reply of the wrong shape; every reader returns a
//! [`ScError::BadReply`] naming the command instead.

use rosc::OscType;

use crate::error::ScError;

/// scsynth's answer to `/status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusReply {
    /// Number of unit generators running.
    pub ugens: i32,
    /// Number of synths.
    pub synths: i32,
    /// Number of groups (the root group included).
    pub groups: i32,
    /// Number of SynthDefs loaded.
    pub synthdefs: i32,
    /// Average CPU use of the audio thread, percent.
    pub avg_cpu: f32,
    /// Peak CPU use of the audio thread, percent.
    pub peak_cpu: f32,
    /// Nominal sample rate, Hz.
    pub nominal_sample_rate: f64,
    /// Measured sample rate, Hz.
    pub actual_sample_rate: f64,
}

pub(crate) fn int(arg: Option<&OscType>) -> Option<i32> {
    match arg? {
        OscType::Int(v) => Some(*v),
        OscType::Long(v) => i32::try_from(*v).ok(),
        _ => None,
    }
}

pub(crate) fn float(arg: Option<&OscType>) -> Option<f64> {
    match arg? {
        OscType::Float(v) => Some(f64::from(*v)),
        OscType::Double(v) => Some(*v),
        OscType::Int(v) => Some(f64::from(*v)),
        _ => None,
    }
}

fn bad(command: &str, reason: impl Into<String>) -> ScError {
    ScError::BadReply {
        command: command.to_string(),
        reason: reason.into(),
    }
}

impl StatusReply {
    pub(crate) fn from_args(args: &[OscType]) -> Result<StatusReply, ScError> {
        let i = |n: usize| {
            int(args.get(n)).ok_or_else(|| bad("/status", format!("argument {n} is not an int")))
        };
        let f = |n: usize| {
            float(args.get(n))
                .ok_or_else(|| bad("/status", format!("argument {n} is not a number")))
        };
        Ok(StatusReply {
            ugens: i(1)?,
            synths: i(2)?,
            groups: i(3)?,
            synthdefs: i(4)?,
            avg_cpu: f(5)? as f32,
            peak_cpu: f(6)? as f32,
            nominal_sample_rate: f(7)?,
            actual_sample_rate: f(8)?,
        })
    }
}

/// A control value in a query tree: a number, or the bus it is mapped to (`c1`, `a2`).
#[derive(Debug, Clone, PartialEq)]
pub enum ControlValue {
    /// The control's current value.
    Number(f32),
    /// The control is mapped to this bus.
    Bus(String),
}

/// A node in scsynth's node tree, as `/g_queryTree` reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeNode {
    /// A group and its children, head first.
    Group {
        /// Node id.
        id: i32,
        /// Children, head to tail.
        children: Vec<TreeNode>,
    },
    /// A synth.
    Synth {
        /// Node id.
        id: i32,
        /// The SynthDef it runs.
        def: String,
        /// Its controls (when the query asked for them), by name or by index when unnamed.
        controls: Vec<(String, ControlValue)>,
    },
}

impl TreeNode {
    /// The node's id.
    pub fn id(&self) -> i32 {
        match self {
            TreeNode::Group { id, .. } | TreeNode::Synth { id, .. } => *id,
        }
    }

    /// This node or a descendant with the given id.
    pub fn find(&self, wanted: i32) -> Option<&TreeNode> {
        if self.id() == wanted {
            return Some(self);
        }
        match self {
            TreeNode::Group { children, .. } => children.iter().find_map(|c| c.find(wanted)),
            TreeNode::Synth { .. } => None,
        }
    }

    /// The numeric value of control `name` if this is a synth that reported it.
    pub fn control(&self, name: &str) -> Option<f32> {
        match self {
            TreeNode::Synth { controls, .. } => controls.iter().find_map(|(n, v)| match v {
                ControlValue::Number(x) if n == name => Some(*x),
                _ => None,
            }),
            TreeNode::Group { .. } => None,
        }
    }

    /// Ids of every synth at or below this node.
    pub fn synth_ids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        self.collect_synths(&mut out);
        out
    }

    fn collect_synths(&self, out: &mut Vec<i32>) {
        match self {
            TreeNode::Synth { id, .. } => out.push(*id),
            TreeNode::Group { children, .. } => {
                for c in children {
                    c.collect_synths(out);
                }
            }
        }
    }

    /// Reads a `/g_queryTree.reply` argument list.
    pub(crate) fn from_reply(args: &[OscType]) -> Result<TreeNode, ScError> {
        let with_controls = int(args.first()).ok_or_else(|| bad("/g_queryTree", "no flag"))? != 0;
        let mut pos = 1;
        let node = read_tree_node(args, &mut pos, with_controls, 0)?;
        Ok(node)
    }
}

const MAX_TREE_DEPTH: usize = 64;

fn read_tree_node(
    args: &[OscType],
    pos: &mut usize,
    with_controls: bool,
    depth: usize,
) -> Result<TreeNode, ScError> {
    const CMD: &str = "/g_queryTree";
    if depth > MAX_TREE_DEPTH {
        return Err(bad(CMD, "node tree nested too deeply"));
    }
    let id =
        int(args.get(*pos)).ok_or_else(|| bad(CMD, format!("argument {pos} is not a node id")))?;
    let n = int(args.get(*pos + 1))
        .ok_or_else(|| bad(CMD, format!("argument {} is not a child count", *pos + 1)))?;
    *pos += 2;
    if n >= 0 {
        // Each child takes at least two arguments.
        if (n as usize).saturating_mul(2) > args.len().saturating_sub(*pos) {
            return Err(bad(
                CMD,
                format!("group {id} claims {n} children, more than the reply holds"),
            ));
        }
        let mut children = Vec::with_capacity(n as usize);
        for _ in 0..n {
            children.push(read_tree_node(args, pos, with_controls, depth + 1)?);
        }
        return Ok(TreeNode::Group { id, children });
    }
    let def = match args.get(*pos) {
        Some(OscType::String(s)) => s.clone(),
        _ => return Err(bad(CMD, format!("synth {id} has no SynthDef name"))),
    };
    *pos += 1;
    let mut controls = Vec::new();
    if with_controls {
        let count = int(args.get(*pos))
            .ok_or_else(|| bad(CMD, format!("synth {id} has no control count")))?;
        *pos += 1;
        if count < 0 || (count as usize).saturating_mul(2) > args.len().saturating_sub(*pos) {
            return Err(bad(
                CMD,
                format!("synth {id} claims {count} controls, more than the reply holds"),
            ));
        }
        for _ in 0..count {
            let name = match &args[*pos] {
                OscType::String(s) => s.clone(),
                OscType::Int(i) => i.to_string(),
                other => return Err(bad(CMD, format!("synth {id}: control name {other:?}"))),
            };
            let value = match &args[*pos + 1] {
                OscType::String(s) => ControlValue::Bus(s.clone()),
                other => match float(Some(other)) {
                    Some(v) => ControlValue::Number(v as f32),
                    None => return Err(bad(CMD, format!("synth {id}: control value {other:?}"))),
                },
            };
            *pos += 2;
            controls.push((name, value));
        }
    }
    Ok(TreeNode::Synth { id, def, controls })
}

/// scsynth's answer to `/n_query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node.
    pub id: i32,
    /// Its parent group.
    pub parent: i32,
    /// The previous node in the parent, or -1.
    pub prev: i32,
    /// The next node in the parent, or -1.
    pub next: i32,
    /// Whether the node is a group.
    pub is_group: bool,
}

impl NodeInfo {
    pub(crate) fn from_args(command: &str, args: &[OscType]) -> Result<NodeInfo, ScError> {
        let i = |n: usize| {
            int(args.get(n)).ok_or_else(|| bad(command, format!("argument {n} is not an int")))
        };
        Ok(NodeInfo {
            id: i(0)?,
            parent: i(1)?,
            prev: i(2)?,
            next: i(3)?,
            is_group: i(4)? == 1,
        })
    }
}

/// A notification scsynth sends to registered clients (`/notify 1`).
#[derive(Debug, Clone, PartialEq)]
pub enum ScEvent {
    /// `/n_go`: a node was created.
    NodeStarted(NodeInfo),
    /// `/n_end`: a node was freed.
    NodeEnded(NodeInfo),
    /// `/n_off`: a node was paused.
    NodeOff(NodeInfo),
    /// `/n_on`: a node was resumed.
    NodeOn(NodeInfo),
    /// `/n_move`: a node was moved.
    NodeMoved(NodeInfo),
    /// A `/fail` that no pending request claimed.
    Failed {
        /// The command that failed.
        command: String,
        /// scsynth's message.
        message: String,
    },
}
