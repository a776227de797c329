// The Function App on the Flex Consumption plan (Linux, Python 3.11): the anonymous HTTP app
// (tracking and seller API) and the timers. It runs as the user-assigned managed identity, which
// it also uses for its own host storage, Key Vault references and Application Insights. Its app
// settings are written by app/settings.bicep, once the app (and its default host name) exists.

param name string
param location string = resourceGroup().location
param tags object = {}
param appServicePlanId string
param storageAccountName string
param deploymentContainerName string
param identityId string
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 100
param httpPerInstanceConcurrency int = 16

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

module api 'br/public:avm/res/web/site:0.15.1' = {
  name: 'api-flex-consumption'
  params: {
    kind: 'functionapp,linux'
    name: name
    location: location
    tags: union(tags, {
      'azd-service-name': 'api'
    })
    serverFarmResourceId: appServicePlanId
    managedIdentities: {
      systemAssigned: false
      userAssignedResourceIds: [
        identityId
      ]
    }
    keyVaultAccessIdentityResourceId: identityId
    httpsOnly: true
    clientAffinityEnabled: false
    basicPublishingCredentialsPolicies: [
      {
        name: 'ftp'
        allow: false
      }
      {
        name: 'scm'
        allow: false
      }
    ]
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageAccount.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      alwaysOn: false
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
  }
}

output name string = api.outputs.name
output defaultHostName string = api.outputs.defaultHostname
