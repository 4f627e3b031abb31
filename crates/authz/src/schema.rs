//! The Cedar schema (`portcullis.cedarschema`, compiled in) and the names built from it once.

use std::sync::LazyLock;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, Schema, SchemaFragment, Validator};

use crate::model::Action;

/// The schema text shipped with the crate (DESIGN §3.4).
pub const SCHEMA_TEXT: &str = include_str!("portcullis.cedarschema");

/// The namespace every Portcullis entity and action lives in.
pub const NAMESPACE: &str = "Portcullis";

/// The schema, with `context.args` opened to any attribute.
pub fn schema() -> Result<&'static Schema, &'static str> {
    static SCHEMA: LazyLock<Result<Schema, String>> = LazyLock::new(build);
    SCHEMA.as_ref().map_err(String::as_str)
}

/// A validator over [`schema`], built once.
pub(crate) fn validator() -> Result<&'static Validator, &'static str> {
    static VALIDATOR: LazyLock<Result<Validator, String>> =
        LazyLock::new(|| Ok(Validator::new(build()?)));
    VALIDATOR.as_ref().map_err(String::as_str)
}

fn build() -> Result<Schema, String> {
    let (fragment, _warnings) = SchemaFragment::from_cedarschema_str(SCHEMA_TEXT)
        .map_err(|e| format!("built-in schema: {e}"))?;
    let mut json = fragment
        .to_json_value()
        .map_err(|e| format!("built-in schema: {e}"))?;
    let args = json
        .pointer_mut("/Portcullis/commonTypes/CallContext/attributes/args")
        .and_then(serde_json::Value::as_object_mut)
        .ok_or("built-in schema: CallContext has no args")?;
    args.insert("additionalAttributes".into(), serde_json::Value::Bool(true));
    Schema::from_json_value(json).map_err(|e| format!("built-in schema: {e}"))
}

/// Entity type names and action ids, parsed once.
pub(crate) struct Names {
    pub user: EntityTypeName,
    pub service: EntityTypeName,
    pub role: EntityTypeName,
    pub upstream: EntityTypeName,
    pub tool: EntityTypeName,
    pub resource: EntityTypeName,
    pub prompt: EntityTypeName,
    actions: Vec<(Action, EntityUid)>,
}

impl Names {
    pub fn get() -> Result<&'static Names, &'static str> {
        static NAMES: LazyLock<Result<Names, String>> = LazyLock::new(Names::build);
        NAMES.as_ref().map_err(String::as_str)
    }

    fn build() -> Result<Names, String> {
        let ty = |local: &str| -> Result<EntityTypeName, String> {
            format!("{NAMESPACE}::{local}")
                .parse()
                .map_err(|e| format!("entity type {local}: {e}"))
        };
        let action_type = ty("Action")?;
        let actions = Action::ALL
            .iter()
            .map(|a| {
                (
                    *a,
                    EntityUid::from_type_name_and_id(
                        action_type.clone(),
                        EntityId::new(a.cedar_id()),
                    ),
                )
            })
            .collect();
        Ok(Names {
            user: ty("User")?,
            service: ty("Service")?,
            role: ty("Role")?,
            upstream: ty("Upstream")?,
            tool: ty("Tool")?,
            resource: ty("Resource")?,
            prompt: ty("Prompt")?,
            actions,
        })
    }

    pub fn action(&self, action: Action) -> Option<&EntityUid> {
        self.actions
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, uid)| uid)
    }

    pub fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_builds_and_declares_every_action() {
        let schema = schema().unwrap();
        let names = Names::get().unwrap();
        let declared: Vec<String> = schema.actions().map(ToString::to_string).collect();
        for a in Action::ALL {
            let uid = names.action(a).unwrap();
            assert!(declared.contains(&uid.to_string()), "{uid} not in schema");
        }
        assert!(validator().is_ok());
    }
}
