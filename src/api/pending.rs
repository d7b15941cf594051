//! Services whose RPCs land in later issues. Their messages are defined and
//! served by reflection now; the calls answer UNIMPLEMENTED until then.

use tonic::{Request, Response, Status};

use crate::proto as pb;
use crate::proto::action_item_service_server::ActionItemService;

/// Action items (issue: action items and postmortems).
#[derive(Clone, Default)]
pub struct PendingActionItems;

pub(crate) fn later(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what} is not available yet in this version of incidentd"
    ))
}

#[tonic::async_trait]
impl ActionItemService for PendingActionItems {
    async fn create_action_item(
        &self,
        _: Request<pb::CreateActionItemRequest>,
    ) -> Result<Response<pb::CreateActionItemResponse>, Status> {
        Err(later("CreateActionItem"))
    }
    async fn get_action_item(
        &self,
        _: Request<pb::GetActionItemRequest>,
    ) -> Result<Response<pb::GetActionItemResponse>, Status> {
        Err(later("GetActionItem"))
    }
    async fn list_action_items(
        &self,
        _: Request<pb::ListActionItemsRequest>,
    ) -> Result<Response<pb::ListActionItemsResponse>, Status> {
        Err(later("ListActionItems"))
    }
    async fn update_action_item(
        &self,
        _: Request<pb::UpdateActionItemRequest>,
    ) -> Result<Response<pb::UpdateActionItemResponse>, Status> {
        Err(later("UpdateActionItem"))
    }
    async fn delete_action_item(
        &self,
        _: Request<pb::DeleteActionItemRequest>,
    ) -> Result<Response<pb::DeleteActionItemResponse>, Status> {
        Err(later("DeleteActionItem"))
    }
}
