//! MCP methods the gateway distinguishes. Everything else is `Other` and still routable.

/// A client-to-server method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Initialize,
    Ping,
    Discover,
    ToolsList,
    ToolsCall,
    ResourcesList,
    ResourceTemplatesList,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    PromptsList,
    PromptsGet,
    Complete,
    LoggingSetLevel,
    SubscriptionsListen,
    /// The tasks extension (`io.modelcontextprotocol/tasks`).
    TasksGet,
    TasksUpdate,
    TasksCancel,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "initialize" => Self::Initialize,
            "ping" => Self::Ping,
            "server/discover" => Self::Discover,
            "tools/list" => Self::ToolsList,
            "tools/call" => Self::ToolsCall,
            "resources/list" => Self::ResourcesList,
            "resources/templates/list" => Self::ResourceTemplatesList,
            "resources/read" => Self::ResourcesRead,
            "resources/subscribe" => Self::ResourcesSubscribe,
            "resources/unsubscribe" => Self::ResourcesUnsubscribe,
            "prompts/list" => Self::PromptsList,
            "prompts/get" => Self::PromptsGet,
            "completion/complete" => Self::Complete,
            "logging/setLevel" => Self::LoggingSetLevel,
            "subscriptions/listen" => Self::SubscriptionsListen,
            "tasks/get" => Self::TasksGet,
            "tasks/update" => Self::TasksUpdate,
            "tasks/cancel" => Self::TasksCancel,
            _ => Self::Other,
        }
    }

    /// The params field that names the target, mirrored in the `Mcp-Name` header.
    pub fn name_field(self) -> Option<&'static str> {
        match self {
            Self::ToolsCall | Self::PromptsGet => Some("name"),
            Self::ResourcesRead | Self::ResourcesSubscribe | Self::ResourcesUnsubscribe => {
                Some("uri")
            }
            Self::TasksGet | Self::TasksUpdate | Self::TasksCancel => Some("taskId"),
            _ => None,
        }
    }

    /// Whether the 2026-07-28 transport requires an `Mcp-Name` header for this method.
    pub fn requires_name_header(self) -> bool {
        matches!(
            self,
            Self::ToolsCall | Self::ResourcesRead | Self::PromptsGet
        )
    }

    /// A list method whose result the gateway merges across upstreams.
    pub fn list_key(self) -> Option<&'static str> {
        match self {
            Self::ToolsList => Some("tools"),
            Self::ResourcesList => Some("resources"),
            Self::ResourceTemplatesList => Some("resourceTemplates"),
            Self::PromptsList => Some("prompts"),
            _ => None,
        }
    }
}
