"""The graphql component: one GraphQL API over the services (contract section 7)."""
