//! `AccountService`: accounts and meters.

use tonic::{Request, Response, Status};

use super::convert;
use super::enums::{self, required};
use super::pb::{self, account_service_server::AccountService};
use crate::app::App;
use crate::app::accounts::{NewAccount, NewMeter};

pub struct Accounts(pub App);

#[tonic::async_trait]
impl AccountService for Accounts {
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let pb::CreateAccountRequest {
            account_no,
            holder_name,
            address,
            customer_class,
            household_size,
            tariff_code,
        } = request.into_inner();
        let customer_class = required(
            "customer_class",
            customer_class,
            enums::customer_class_from_proto,
        )?;
        let new = NewAccount {
            account_no,
            holder_name,
            address,
            customer_class: customer_class.as_str().to_owned(),
            household_size,
            tariff_code,
        };
        let created = self.0.create_account(new).await?;
        let view = self.0.get_account(&created.account_no, "").await?;
        Ok(Response::new(convert::account(view)?))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let pb::GetAccountRequest { account_no, as_of } = request.into_inner();
        let view = self.0.get_account(&account_no, &as_of).await?;
        Ok(Response::new(convert::account(view)?))
    }

    async fn install_meter(
        &self,
        request: Request<pb::InstallMeterRequest>,
    ) -> Result<Response<pb::Meter>, Status> {
        let pb::InstallMeterRequest {
            account_no,
            meter_no,
            register_digits,
            initial_index,
            installed_on,
        } = request.into_inner();
        let new = NewMeter {
            meter_no,
            register_digits,
            initial_index,
            installed_on,
        };
        let view = self.0.install_meter(&account_no, new).await?;
        Ok(Response::new(convert::meter(view)))
    }

    async fn replace_meter(
        &self,
        request: Request<pb::ReplaceMeterRequest>,
    ) -> Result<Response<pb::Meter>, Status> {
        let pb::ReplaceMeterRequest {
            account_no,
            old_meter_no,
            old_final_index,
            new_meter_no,
            new_register_digits,
            new_initial_index,
            replaced_on,
        } = request.into_inner();
        let new = NewMeter {
            meter_no: new_meter_no,
            register_digits: new_register_digits,
            initial_index: new_initial_index,
            installed_on: replaced_on,
        };
        let view = self
            .0
            .replace_meter(&account_no, &old_meter_no, old_final_index, new)
            .await?;
        Ok(Response::new(convert::meter(view)))
    }
}
