"""PromoteModel: copy an approved (or, for a rollback, retired) version to the production bucket,
warm it on the production MME, then flip the production alias. Started through EventBridge by
ModelApproved and PromotionRequested events (functions/promote_model.asl.json)."""
